import type { CloudWatchLogsEvent } from 'aws-lambda';
import { auditLog } from '../context';
import { logItems, unzipLogs } from './logs-payload';
import { streamName } from './streams';

/**
 * A CloudWatch Logs subscription delivers gzip, base64-encoded. Invocations are asynchronous:
 * throwing makes Lambda retry, which is safe because writes are idempotent, so events that
 * could not be stored throw; events that can never be accepted are quarantined instead.
 */
export async function handler(event: CloudWatchLogsEvent): Promise<{ accepted: number }> {
  const payload = unzipLogs(Buffer.from(event.awslogs.data, 'base64'));
  const items = logItems(payload, (id) => id);
  if (items.length === 0) return { accepted: 0 };

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
  return { accepted: outcomes.filter((o) => o.status === 'accepted').length };
}
