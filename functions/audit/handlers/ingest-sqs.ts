import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { auditLog } from '../context';
import { decodeText } from '../decode';
import type { IngestItem } from '../service';
import { nameFromArn, streamName } from './streams';

/**
 * SQS: a partial-batch response names the messages to retry (ReportBatchItemFailures on the
 * mapping). Messages that can never be accepted are quarantined and not reported, so they
 * are not redelivered; only messages whose events could not be stored are retried.
 */
export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  if (!Array.isArray(event?.Records)) throw new TypeError('not an SQS event: no Records list');
  const byQueue = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const queue = nameFromArn(record.eventSourceARN, 'queue');
    byQueue.set(queue, [...(byQueue.get(queue) ?? []), record]);
  }

  const failed = new Set<string>();
  for (const [queue, records] of byQueue) {
    try {
      const outcomes = await auditLog().ingest(
        { source: 'sqs', stream: streamName('sqs', queue), producer: `sqs:${queue}` },
        records.flatMap(itemsOf),
      );
      for (const o of outcomes) if (o.status === 'failed') failed.add(o.ref);
    } catch {
      records.forEach((r) => failed.add(r.messageId));
    }
  }
  return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
}

function itemsOf(record: SQSRecord): IngestItem<string>[] {
  if (typeof record.body !== 'string') {
    // Quarantined, never retried: a message without a body will not grow one.
    const problem = { field: 'body', reason: 'is missing or not text' };
    return [
      {
        ref: record.messageId,
        sourceRef: `sqs:${record.messageId}`,
        decoded: { format: 'native', parsed: { ok: false, problem } },
      },
    ];
  }
  return decodeText(unwrapSns(record.body)).map((decoded, index) => ({
    ref: record.messageId,
    decoded,
    sourceRef: `sqs:${record.messageId}#${index}`,
    raw: record.body,
  }));
}

/** A queue subscribed to an SNS topic without raw delivery receives the SNS envelope. */
function unwrapSns(body: string): string {
  if (!body.includes('"Type"') || !body.includes('"Message"')) return body;
  try {
    const envelope = JSON.parse(body) as { Type?: string; Message?: string; TopicArn?: string };
    return envelope.Type === 'Notification' && typeof envelope.Message === 'string'
      ? envelope.Message
      : body;
  } catch {
    return body;
  }
}
