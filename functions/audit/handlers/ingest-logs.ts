import crypto from 'node:crypto';
import type { CloudWatchLogsDecodedData, CloudWatchLogsEvent } from 'aws-lambda';
import { auditLog } from '../context';
import { logItems, unzipLogs } from './logs-payload';
import { streamName } from './streams';

/**
 * A CloudWatch Logs subscription delivers gzip, base64-encoded. Invocations are asynchronous:
 * throwing makes Lambda retry, which is safe because writes are idempotent, so events that
 * could not be stored throw; events that can never be accepted are quarantined instead.
 */
export async function handler(event: CloudWatchLogsEvent): Promise<Counts> {
  let payload: CloudWatchLogsDecodedData;
  try {
    payload = unzipLogs(Buffer.from(String(event?.awslogs?.data ?? ''), 'base64'));
  } catch {
    // A delivery that will never decode is quarantined once, not retried.
    const problem = { field: 'awslogs.data', reason: 'is not a gzip CloudWatch Logs payload' };
    await auditLog().ingest(
      { source: 'logs', stream: streamName('logs', 'undecodable'), producer: 'logs:unknown' },
      [
        {
          ref: 'delivery',
          sourceRef: `logs:undecodable:${crypto.randomUUID()}`,
          decoded: { format: 'native', parsed: { ok: false, problem } },
        },
      ],
    );
    return { accepted: 0, duplicate: 0, rejected: 1 };
  }
  const items = logItems(payload, (id) => id);
  if (items.length === 0) return { accepted: 0, duplicate: 0, rejected: 0 };

  const outcomes = await auditLog().ingest(
    {
      source: 'logs',
      stream: streamName('logs', payload.logGroup),
      producer: `logs:${payload.logGroup}`,
    },
    items,
  );
  const failed = outcomes.filter((o) => o.status === 'failed').length;
  if (failed > 0)
    throw new Error(`${failed} log events could not be stored; retrying the delivery`);
  const count = (status: string) => outcomes.filter((o) => o.status === status).length;
  return {
    accepted: count('accepted'),
    duplicate: count('duplicate'),
    rejected: count('rejected'),
  };
}

interface Counts {
  accepted: number;
  duplicate: number;
  rejected: number;
}
