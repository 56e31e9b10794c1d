import type { LogRecord, LogRejection } from '../ports';

// PutLogEvents limits, from the CloudWatch Logs API reference for PutLogEvents.
export const MAX_EVENTS_PER_CALL = 10_000;
export const MAX_BYTES_PER_CALL = 1_048_576;
/** Each event counts as its message's UTF-8 bytes plus this fixed overhead. */
export const EVENT_OVERHEAD_BYTES = 26;
/**
 * 256 KB per event, overhead included. The service has since raised the cap to 1 MB; the
 * older figure is kept because it holds under both and in every partition.
 */
export const MAX_EVENT_BYTES = 262_144;
export const MAX_MESSAGE_BYTES = MAX_EVENT_BYTES - EVENT_OVERHEAD_BYTES;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const MAX_BATCH_SPAN_MS = DAY_MS;
export const MAX_FUTURE_MS = 2 * HOUR_MS;
export const MAX_AGE_DAYS = 14;

/** Fixed reasons, so callers can count and match them; they never quote the message. */
export const PLAN_REJECTION = {
  invalidTimestamp: 'timestamp is not a whole number of milliseconds',
  emptyMessage: 'message is empty',
  tooNew: 'timestamp is more than 2 hours in the future',
  tooOld: 'timestamp is more than 14 days old',
  beyondRetention: 'timestamp is older than the log group retention period',
} as const;

export interface PlanOptions {
  /** Retention of the log group in days; events older than it are refused by the service. */
  retentionDays?: number;
}

export interface LogBatchPlan {
  /** Each batch is one PutLogEvents call, in ascending timestamp order. */
  batches: LogRecord[][];
  rejected: LogRejection[];
}

/**
 * Splits records into PutLogEvents calls the service will accept whole. Records it would
 * refuse are returned as rejections instead of being dropped; a message too large for one
 * event is cut into parts that each end with a ` [part i/n]` marker.
 */
export function planLogBatches(
  records: LogRecord[],
  now: number,
  options: PlanOptions = {},
): LogBatchPlan {
  const oldest = oldestAccepted(now, options.retentionDays);
  const rejected: LogRejection[] = [];
  const accepted: LogRecord[] = [];

  for (const record of records) {
    const reason = problemWith(record, now, oldest);
    if (reason) rejected.push({ record, reason });
    else accepted.push(record);
  }

  // Array.prototype.sort is stable, so records sharing a timestamp (and the parts of one
  // split message) keep the order they were given in.
  const ordered = accepted.flatMap(splitOversized).sort((a, b) => a.timestamp - b.timestamp);
  return { batches: groupIntoBatches(ordered), rejected };
}

/** The UTF-8 size the service charges for one event. */
export function eventBytes(record: LogRecord): number {
  return Buffer.byteLength(record.message, 'utf8') + EVENT_OVERHEAD_BYTES;
}

/** The marker appended to each part of a split message. */
export function partMarker(part: number, total: number): string {
  return ` [part ${part}/${total}]`;
}

interface AgeLimit {
  timestamp: number;
  reason: string;
}

function oldestAccepted(now: number, retentionDays: number | undefined): AgeLimit {
  if (retentionDays !== undefined && !(retentionDays > 0)) {
    throw new RangeError('retentionDays must be a positive number of days');
  }
  if (retentionDays !== undefined && retentionDays < MAX_AGE_DAYS) {
    return { timestamp: now - retentionDays * DAY_MS, reason: PLAN_REJECTION.beyondRetention };
  }
  return { timestamp: now - MAX_AGE_DAYS * DAY_MS, reason: PLAN_REJECTION.tooOld };
}

function problemWith(record: LogRecord, now: number, oldest: AgeLimit): string | undefined {
  if (!Number.isSafeInteger(record.timestamp)) return PLAN_REJECTION.invalidTimestamp;
  // The API requires at least one character per message; one empty event fails the call.
  if (record.message.length === 0) return PLAN_REJECTION.emptyMessage;
  if (record.timestamp > now + MAX_FUTURE_MS) return PLAN_REJECTION.tooNew;
  if (record.timestamp < oldest.timestamp) return oldest.reason;
  return undefined;
}

function splitOversized(record: LogRecord): LogRecord[] {
  const bytes = Buffer.from(record.message, 'utf8');
  if (bytes.length <= MAX_MESSAGE_BYTES) return [record];

  // The marker's length depends on the number of parts, which depends on the room the marker
  // leaves; grow the guess until the count stops changing (at most once per extra digit).
  let chunks: string[] = [];
  for (let total = 2; ;) {
    const room = MAX_MESSAGE_BYTES - Buffer.byteLength(partMarker(total, total));
    chunks = chunkUtf8(bytes, room);
    if (chunks.length <= total) break;
    total = chunks.length;
  }

  return chunks.map((chunk, index) => ({
    timestamp: record.timestamp,
    message: chunk + partMarker(index + 1, chunks.length),
  }));
}

/** Cuts UTF-8 bytes into strings of at most `room` bytes without splitting a character. */
function chunkUtf8(bytes: Buffer, room: number): string[] {
  const chunks: string[] = [];
  let start = 0;

  while (start < bytes.length) {
    let end = Math.min(start + room, bytes.length);
    while (end < bytes.length && isContinuationByte(bytes.readUInt8(end))) end -= 1;
    chunks.push(bytes.subarray(start, end).toString('utf8'));
    start = end;
  }
  return chunks;
}

/** Bytes of the form 10xxxxxx continue a multi-byte character and cannot start a chunk. */
function isContinuationByte(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

function groupIntoBatches(ordered: LogRecord[]): LogRecord[][] {
  const batches: LogRecord[][] = [];
  let current: LogRecord[] = [];
  let currentBytes = 0;

  for (const record of ordered) {
    const bytes = eventBytes(record);
    if (current.length > 0 && !fits(current, currentBytes, record, bytes)) {
      batches.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(record);
    currentBytes += bytes;
  }

  if (current.length > 0) batches.push(current);
  return batches;
}

function fits(batch: LogRecord[], batchBytes: number, next: LogRecord, bytes: number): boolean {
  const first = batch[0];
  // The span limit is treated as exclusive so a batch never sits exactly on the boundary.
  const span = first === undefined ? 0 : next.timestamp - first.timestamp;
  return (
    batch.length < MAX_EVENTS_PER_CALL &&
    batchBytes + bytes <= MAX_BYTES_PER_CALL &&
    span < MAX_BATCH_SPAN_MS
  );
}
