import type {
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
  KinesisStreamRecord,
} from 'aws-lambda';
import { auditLog } from '../context';
import { decodeText } from '../decode';
import type { IngestItem } from '../service';
import { isGzip, logItems, unzipLogs } from './logs-payload';
import { nameFromArn, streamName } from './streams';

/**
 * Kinesis: the partial-batch response is a checkpoint. Lambda rewinds to the lowest reported
 * sequence number and redelivers everything after it, so only that one is reported; writes
 * are idempotent on shard and sequence number, so the redelivery stores nothing twice.
 * Records that can never be accepted are quarantined and not reported: the shard never stalls.
 * Sequence numbers are long digit strings and stay strings throughout.
 */
export async function handler(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  if (!Array.isArray(event?.Records)) throw new TypeError('not a Kinesis event: no Records list');
  const byShard = new Map<string, KinesisStreamRecord[]>();
  for (const record of event.Records) {
    const shard = `${nameFromArn(record.eventSourceARN, 'stream')}-${shardOf(record)}`;
    byShard.set(shard, [...(byShard.get(shard) ?? []), record]);
  }

  const failures: string[] = [];
  for (const [shard, records] of byShard) {
    const failedAt = await ingestShard(shard, records);
    if (failedAt) failures.push(failedAt);
  }
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
}

/** Returns the sequence number of the first record that could not be stored, if any. */
async function ingestShard(shard: string, records: KinesisStreamRecord[]) {
  const origin = {
    source: 'kinesis' as const,
    stream: streamName('kinesis', shard),
    producer: `kinesis:${shard}`,
  };
  const items = records.flatMap(itemsOf);
  try {
    const outcomes = await auditLog().ingest(origin, items);
    return firstFailed(
      records,
      new Set(outcomes.filter((o) => o.status === 'failed').map((o) => o.ref)),
    );
  } catch {
    // Find the first record that fails on its own; everything before it is then stored.
    for (const record of records) {
      try {
        const outcomes = await auditLog().ingest(origin, itemsOf(record));
        if (outcomes.some((o) => o.status === 'failed')) return seqOf(record);
      } catch {
        return seqOf(record);
      }
    }
    return undefined;
  }
}

function firstFailed(records: KinesisStreamRecord[], failed: Set<string>): string | undefined {
  const record = records.find((r) => failed.has(seqOf(r)));
  return record ? seqOf(record) : undefined;
}

const seqOf = (record: KinesisStreamRecord) => String(record.kinesis?.sequenceNumber ?? '');

function shardOf(record: KinesisStreamRecord): string {
  return typeof record.eventID === 'string' ? (record.eventID.split(':')[0] ?? 'shard') : 'shard';
}

function itemsOf(record: KinesisStreamRecord): IngestItem<string>[] {
  const seq = seqOf(record);
  const shard = shardOf(record);
  if (typeof record.kinesis?.data !== 'string') {
    // Quarantined and passed over: redelivering a record without data would stall the shard.
    return [poison(seq, shard, 'is missing or not base64 text')];
  }
  const data = Buffer.from(record.kinesis.data, 'base64');
  if (isGzip(data)) {
    // CloudWatch Logs delivered through Kinesis: gzip inside the record, decoded exactly once.
    try {
      return logItems(unzipLogs(data), () => seq);
    } catch {
      return [poison(seq, shard, 'is gzip but not a CloudWatch Logs payload')];
    }
  }
  return decodeText(data.toString('utf8')).map((decoded, index) => ({
    ref: seq,
    decoded,
    sourceRef: `kinesis:${shard}:${seq}#${index}`,
    raw: data.toString('utf8'),
  }));
}

function poison(seq: string, shard: string, reason: string): IngestItem<string> {
  return {
    ref: seq,
    sourceRef: `kinesis:${shard}:${seq}`,
    decoded: { format: 'native', parsed: { ok: false, problem: { field: 'data', reason } } },
  };
}
