import {
  CreateLogStreamCommand,
  FilterLogEventsCommand,
  PutLogEventsCommand,
  type CloudWatchLogsClient,
  type RejectedLogEventsInfo,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  systemClock,
  type Clock,
  type LogRecord,
  type LogRejection,
  type LogSink,
  type ProbeResult,
} from '../ports';
import { planLogBatches } from './batches';

/** The shape of an injected logger; the rest parameter also admits the Powertools Logger. */
export interface AdapterLogger {
  warn(msg: string, ...extra: Record<string, unknown>[]): void;
  error(msg: string, ...extra: Record<string, unknown>[]): void;
}

export interface CloudWatchLogSinkOptions {
  client: CloudWatchLogsClient;
  /** Each log is the group `${logGroupPrefix}/${log}`; the groups are provisioned elsewhere. */
  logGroupPrefix: string;
  streamName: string;
  /** The log groups' retention in days, when it is shorter than the 14 days the API allows. */
  retentionDays?: number;
  clock?: Clock;
  logger: AdapterLogger;
}

/** Reasons for events the service itself refused, read from `rejectedLogEventsInfo`. */
export const SERVICE_REJECTION = {
  tooNew: 'refused by CloudWatch Logs: too far in the future',
  tooOld: 'refused by CloudWatch Logs: too old',
  expired: 'refused by CloudWatch Logs: older than the retention period',
} as const;

/**
 * A PutLogEvents call failed after the SDK's own retries. Batches before it were stored, so
 * retrying the whole append can store those records twice; for an audit trail a duplicate is
 * preferable to a loss, and readers should tolerate one.
 */
export class LogDeliveryError extends Error {
  constructor(
    readonly log: string,
    readonly batchesSent: number,
    readonly batchesTotal: number,
    options: { cause: unknown },
  ) {
    super(`PutLogEvents failed after ${batchesSent} of ${batchesTotal} batches`, options);
    this.name = 'LogDeliveryError';
  }
}

export class CloudWatchLogSink implements LogSink {
  private readonly client: CloudWatchLogsClient;
  private readonly logGroupPrefix: string;
  private readonly streamName: string;
  private readonly retentionDays: number | undefined;
  private readonly clock: Clock;
  private readonly logger: AdapterLogger;

  constructor(options: CloudWatchLogSinkOptions) {
    this.client = options.client;
    this.logGroupPrefix = options.logGroupPrefix;
    this.streamName = options.streamName;
    this.retentionDays = options.retentionDays;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
  }

  /** Not reached from a health check: configuration only. */
  async probe(): Promise<ProbeResult> {
    if (!this.logGroupPrefix.startsWith('/'))
      throw new Error('the log group prefix must start with /');
    return 'configured';
  }

  async append(log: string, records: LogRecord[]): Promise<{ rejected: LogRejection[] }> {
    const now = this.clock.now().getTime();
    const plan = planLogBatches(records, now, { retentionDays: this.retentionDays });
    const group = this.groupOf(log);
    const rejected = [...plan.rejected];

    // One call at a time, so the stream holds the batches in the order they were planned.
    for (const [index, batch] of plan.batches.entries()) {
      let info: RejectedLogEventsInfo | undefined;
      try {
        info = await this.put(group, batch);
      } catch (error) {
        throw new LogDeliveryError(log, index, plan.batches.length, { cause: error });
      }
      rejected.push(...serviceRejections(batch, info));
    }

    if (rejected.length > 0) {
      const byReason = countByReason(rejected);
      this.logger.warn('log events rejected', { log, count: rejected.length, byReason });
    }
    return { rejected };
  }

  /**
   * Every record of the log, from every writer's stream: each Lambda container writes its own
   * stream, and a reader must see all of them. Pages through FilterLogEvents over the group.
   */
  async *read(log: string): AsyncIterable<LogRecord> {
    const group = this.groupOf(log);
    let token: string | undefined;
    do {
      const page = await this.filterPage(group, token);
      if (!page) return;
      for (const event of page.events ?? []) {
        if (event.timestamp === undefined || event.message === undefined) continue;
        yield { timestamp: event.timestamp, message: event.message };
      }
      token = page.nextToken;
    } while (token);
  }

  private groupOf(log: string): string {
    return `${this.logGroupPrefix}/${log}`;
  }

  /** Streams are created on first use: a missing stream costs one extra call, once. */
  private async put(group: string, batch: LogRecord[]): Promise<RejectedLogEventsInfo | undefined> {
    try {
      return await this.putOnce(group, batch);
    } catch (error) {
      if (!hasName(error, 'ResourceNotFoundException')) throw error;
    }
    await this.createStream(group);
    return this.putOnce(group, batch);
  }

  private async putOnce(group: string, batch: LogRecord[]) {
    const logEvents = batch.map((record) => ({
      timestamp: record.timestamp,
      message: record.message,
    }));
    const command = new PutLogEventsCommand({
      logGroupName: group,
      logStreamName: this.streamName,
      logEvents,
    });
    const response = await this.client.send(command);
    return response.rejectedLogEventsInfo;
  }

  private async createStream(group: string): Promise<void> {
    try {
      const command = new CreateLogStreamCommand({
        logGroupName: group,
        logStreamName: this.streamName,
      });
      await this.client.send(command);
    } catch (error) {
      // Another writer created it between our failed put and this call; that is the goal.
      if (!hasName(error, 'ResourceAlreadyExistsException')) throw error;
    }
  }

  /** A log never written reads as empty, as a missing file does for the local sink. */
  private async filterPage(group: string, token: string | undefined) {
    const command = new FilterLogEventsCommand({ logGroupName: group, nextToken: token });
    try {
      return await this.client.send(command);
    } catch (error) {
      if (token === undefined && hasName(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }
}

/**
 * The end indices are exclusive: `tooOldLogEventEndIndex: 1` refuses only the first event.
 * The API reference leaves `expiredLogEventEndIndex` undescribed; it is read the same way.
 */
function serviceRejections(batch: LogRecord[], info?: RejectedLogEventsInfo): LogRejection[] {
  if (!info) return [];
  return batch.flatMap((record, index) => {
    const reason = serviceReason(index, info);
    return reason ? [{ record, reason }] : [];
  });
}

function serviceReason(index: number, info: RejectedLogEventsInfo): string | undefined {
  if (index < (info.expiredLogEventEndIndex ?? 0)) return SERVICE_REJECTION.expired;
  if (index < (info.tooOldLogEventEndIndex ?? 0)) return SERVICE_REJECTION.tooOld;
  const firstTooNew = info.tooNewLogEventStartIndex;
  if (firstTooNew !== undefined && index >= firstTooNew) return SERVICE_REJECTION.tooNew;
  return undefined;
}

/** Counts per reason; reasons are fixed strings, so the log line carries no content. */
function countByReason(rejected: LogRejection[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { reason } of rejected) counts[reason] = (counts[reason] ?? 0) + 1;
  return counts;
}

function hasName(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}
