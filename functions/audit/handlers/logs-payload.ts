import zlib from 'node:zlib';
import type { CloudWatchLogsDecodedData } from 'aws-lambda';
import type { IngestItem } from '../service';
import { decodeText } from '../decode';

/** Gzip's magic number: CloudWatch Logs subscription payloads always start with it. */
export const isGzip = (data: Buffer) => data.length > 2 && data[0] === 0x1f && data[1] === 0x8b;

/** Decompresses a subscription payload; the caller has already decoded the base64 once. */
export function unzipLogs(data: Buffer): CloudWatchLogsDecodedData {
  return JSON.parse(zlib.gunzipSync(data).toString('utf8')) as CloudWatchLogsDecodedData;
}

/**
 * The audit events in a subscription payload. Control messages (sent when a subscription is
 * created) carry none. Each log event's id is its dedupe key and its timestamp the event's
 * time when the message itself has none.
 */
export function logItems<R>(
  payload: CloudWatchLogsDecodedData,
  ref: (logEventId: string) => R,
): IngestItem<R>[] {
  if ((payload.messageType as string) === 'CONTROL_MESSAGE') return [];
  return payload.logEvents.flatMap((logEvent) =>
    decodeText(withTimestamp(logEvent.message, logEvent.timestamp)).map((decoded, index) => ({
      ref: ref(logEvent.id),
      decoded,
      sourceRef: `logs:${logEvent.id}#${index}`,
      raw: logEvent.message,
    })),
  );
}

/**
 * The Node.js and Python Lambda runtimes prefix each line they write with its time, request id
 * and level, tab-separated: `2026-01-01T00:00:00.000Z<TAB>id<TAB>INFO<TAB>{...}`.
 */
const LAMBDA_LINE_PREFIX = /^\d{4}-\d{2}-\d{2}T[\d:.]+Z\t[^\t]*\t[A-Z]+\t/;

function withTimestamp(line: string, timestamp: number): string {
  const message = line.replace(LAMBDA_LINE_PREFIX, '');
  const trimmed = message.trim();
  if (!trimmed.startsWith('{')) return message;
  try {
    const value = JSON.parse(trimmed) as Record<string, unknown>;
    const fhir = value.resourceType === 'AuditEvent' || value.resourceType === 'Bundle';
    if (fhir || value.timestamp !== undefined) return message;
    return JSON.stringify({ ...value, timestamp: new Date(timestamp).toISOString() });
  } catch {
    return message;
  }
}
