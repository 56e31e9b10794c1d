import {
  CloudWatchLogsClient,
  CreateLogStreamCommand,
  FilterLogEventsCommand,
  PutLogEventsCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  ServiceUnavailableException,
  type InputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import {
  EVENT_OVERHEAD_BYTES,
  MAX_BATCH_SPAN_MS,
  MAX_BYTES_PER_CALL,
  MAX_EVENTS_PER_CALL,
  MAX_MESSAGE_BYTES,
  PLAN_REJECTION,
  planLogBatches,
} from '../../functions/platform/logsink/batches';
import {
  CloudWatchLogSink,
  LogDeliveryError,
  SERVICE_REJECTION,
} from '../../functions/platform/logsink/cloudwatch';
import type { LogRecord } from '../../functions/platform/ports';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.UTC(2026, 0, 31, 12, 0, 0);
const PART = / \[part (\d+)\/(\d+)\]$/;

const client = new CloudWatchLogsClient({ region: 'us-east-1' });
const logs = mockClient(client);
const logger = { warn: jest.fn(), error: jest.fn() };

function sink(retentionDays?: number): CloudWatchLogSink {
  return new CloudWatchLogSink({
    client,
    logGroupPrefix: '/vigil/test',
    streamName: 'ingest',
    retentionDays,
    clock: { now: () => new Date(T) },
    logger,
  });
}

function sentCalls(): InputLogEvent[][] {
  return logs.commandCalls(PutLogEventsCommand).map((call) => call.args[0].input.logEvents ?? []);
}

function bytesOf(events: InputLogEvent[]): number {
  return events.reduce(
    (sum, e) => sum + Buffer.byteLength(e.message ?? '') + EVENT_OVERHEAD_BYTES,
    0,
  );
}

/** Joins split parts back into the messages they came from, in the order they were sent. */
function reassemble(events: InputLogEvent[]): string[] {
  const messages: string[] = [];
  let pending = '';
  for (const { message = '' } of events) {
    const part = PART.exec(message);
    if (!part) {
      messages.push(message);
      continue;
    }
    pending += message.slice(0, part.index);
    if (part[1] === part[2]) {
      messages.push(pending);
      pending = '';
    }
  }
  return messages;
}

afterEach(() => {
  logs.reset();
  jest.clearAllMocks();
});

afterAll(() => logs.restore());

describe('CloudWatchLogSink.append', () => {
  const fixed: LogRecord[] = [
    { timestamp: T + 5_000, message: 'at T+5s' },
    { timestamp: T, message: 'at T' },
    { timestamp: T + 2_000, message: 'at T+2s' },
    { timestamp: T - 25 * HOUR, message: 'at T-25h' },
    { timestamp: T + 3 * HOUR, message: 'at T+3h' },
    { timestamp: T - 15 * DAY, message: 'at T-15d' },
  ];
  const small = Array.from({ length: 12_000 }, (_, i) => ({
    timestamp: T - 60_000 + i,
    message: `small ${i}`,
  }));
  const large = { timestamp: T - 1_000, message: 'x'.repeat(300 * 1024) };
  const input = [...fixed, ...small, large];

  beforeEach(() => {
    // The service refuses the first event of the first call, as if retention were shorter.
    logs
      .on(PutLogEventsCommand)
      .resolvesOnce({ rejectedLogEventsInfo: { tooOldLogEventEndIndex: 1 } })
      .resolves({});
  });

  it('sends every call in ascending timestamp order', async () => {
    await sink().append('audit', input);

    for (const events of sentCalls()) {
      const stamps = events.map((e) => e.timestamp ?? NaN);
      expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    }
  });

  it('keeps every call within the span, count and byte limits', async () => {
    await sink().append('audit', input);

    const calls = sentCalls();
    expect(calls.length).toBeGreaterThan(1);
    for (const events of calls) {
      const first = events[0]?.timestamp ?? NaN;
      const last = events[events.length - 1]?.timestamp ?? NaN;
      expect(last - first).toBeLessThan(MAX_BATCH_SPAN_MS);
      expect(events.length).toBeLessThanOrEqual(MAX_EVENTS_PER_CALL);
      expect(bytesOf(events)).toBeLessThanOrEqual(MAX_BYTES_PER_CALL);
    }
  });

  it('writes to the log group of the log and the configured stream', async () => {
    await sink().append('audit', input);

    for (const call of logs.commandCalls(PutLogEventsCommand)) {
      expect(call.args[0].input).toMatchObject({
        logGroupName: '/vigil/test/audit',
        logStreamName: 'ingest',
      });
    }
  });

  it('sends the 25-hour-old event in a call that spans at most a day', async () => {
    await sink().append('audit', input);

    const call = sentCalls().find((events) => events.some((e) => e.message === 'at T-25h'));
    expect(call).toBeDefined();
    expect(call?.every((e) => (e.timestamp ?? NaN) - (T - 25 * HOUR) < MAX_BATCH_SPAN_MS)).toBe(
      true,
    );
  });

  it('rejects, unsent, events over 2 hours ahead or 15 days old', async () => {
    const { rejected } = await sink().append('audit', input);

    expect(rejected).toContainEqual({ record: fixed[4], reason: PLAN_REJECTION.tooNew });
    expect(rejected).toContainEqual({ record: fixed[5], reason: PLAN_REJECTION.tooOld });
    const sent = sentCalls()
      .flat()
      .map((e) => e.message);
    expect(sent).not.toContain('at T+3h');
    expect(sent).not.toContain('at T-15d');
  });

  it('splits the 300 KB message into marked parts that are all sent', async () => {
    await sink().append('audit', input);

    const parts = sentCalls()
      .flat()
      .filter((e) => PART.test(e.message ?? ''));
    expect(parts.map((e) => PART.exec(e.message ?? '')?.slice(1))).toEqual([
      ['1', '2'],
      ['2', '2'],
    ]);
    for (const part of parts) {
      expect(Buffer.byteLength(part.message ?? '')).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    }
    expect(reassemble(parts)).toEqual([large.message]);
  });

  it('turns rejectedLogEventsInfo into rejections and warns with counts only', async () => {
    const { rejected } = await sink().append('audit', input);

    expect(rejected).toContainEqual({ record: fixed[3], reason: SERVICE_REJECTION.tooOld });
    expect(logger.warn).toHaveBeenCalledWith('log events rejected', {
      log: 'audit',
      count: 3,
      byReason: {
        [PLAN_REJECTION.tooNew]: 1,
        [PLAN_REJECTION.tooOld]: 1,
        [SERVICE_REJECTION.tooOld]: 1,
      },
    });
  });

  it('accounts for every input as either stored or rejected, exactly once', async () => {
    const { rejected } = await sink().append('audit', input);

    const refused = new Set(rejected.map((r) => r.record.message));
    const stored = reassemble(sentCalls().flat()).filter((m) => !refused.has(m));
    const accounted = [...stored, ...rejected.map((r) => r.record.message)];
    expect(accounted.sort()).toEqual(input.map((r) => r.message).sort());
  });
});

describe('CloudWatchLogSink stream handling', () => {
  const record = { timestamp: T, message: 'hello' };

  it('creates a missing stream once and retries the call', async () => {
    logs
      .on(PutLogEventsCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'no stream', $metadata: {} }))
      .resolves({});
    logs.on(CreateLogStreamCommand).resolves({});

    const result = await sink().append('audit', [record]);

    expect(result.rejected).toEqual([]);
    expect(logs.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input)).toEqual([
      { logGroupName: '/vigil/test/audit', logStreamName: 'ingest' },
    ]);
    expect(logs.commandCalls(PutLogEventsCommand)).toHaveLength(2);
  });

  it('treats a stream created concurrently by another writer as created', async () => {
    logs
      .on(PutLogEventsCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'no stream', $metadata: {} }))
      .resolves({});
    logs
      .on(CreateLogStreamCommand)
      .rejects(new ResourceAlreadyExistsException({ message: 'exists', $metadata: {} }));

    await expect(sink().append('audit', [record])).resolves.toEqual({ rejected: [] });
  });

  it('fails with the progress made when the retried call still finds no stream', async () => {
    const missing = new ResourceNotFoundException({ message: 'no group', $metadata: {} });
    logs.on(PutLogEventsCommand).rejects(missing);
    logs.on(CreateLogStreamCommand).resolves({});

    const failure = sink().append('audit', [record]);

    await expect(failure).rejects.toBeInstanceOf(LogDeliveryError);
    await expect(failure).rejects.toMatchObject({
      batchesSent: 0,
      batchesTotal: 1,
      cause: missing,
    });
    expect(logs.commandCalls(CreateLogStreamCommand)).toHaveLength(1);
  });

  it('does not create streams for errors other than a missing resource', async () => {
    const outage = new ServiceUnavailableException({ message: 'down', $metadata: {} });
    logs.on(PutLogEventsCommand).rejects(outage);

    await expect(sink().append('audit', [record])).rejects.toMatchObject({ cause: outage });
    expect(logs.commandCalls(CreateLogStreamCommand)).toHaveLength(0);
  });

  it('makes no call when every record is rejected', async () => {
    const { rejected } = await sink().append('audit', [{ timestamp: T + 3 * HOUR, message: 'x' }]);

    expect(rejected).toHaveLength(1);
    expect(logs.commandCalls(PutLogEventsCommand)).toHaveLength(0);
  });
});

describe('CloudWatchLogSink.read', () => {
  async function readAll(): Promise<LogRecord[]> {
    const records: LogRecord[] = [];
    for await (const record of sink().read('audit')) records.push(record);
    return records;
  }

  it('reads every writer stream of the group, page by page, until no token is left', async () => {
    logs
      .on(FilterLogEventsCommand, { nextToken: undefined })
      .resolves({
        events: [
          { timestamp: 1, message: 'a', logStreamName: 'ingest' },
          { timestamp: 2, message: 'b', logStreamName: 'checkpoint' },
        ],
        nextToken: 'n/1',
      })
      .on(FilterLogEventsCommand, { nextToken: 'n/1' })
      .resolves({ events: [{ timestamp: 3, message: 'c', logStreamName: 'ingest' }] });

    await expect(readAll()).resolves.toEqual([
      { timestamp: 1, message: 'a' },
      { timestamp: 2, message: 'b' },
      { timestamp: 3, message: 'c' },
    ]);
    const inputs = logs.commandCalls(FilterLogEventsCommand).map((c) => c.args[0].input);
    expect(inputs).toHaveLength(2);
    for (const input of inputs) {
      expect(input.logGroupName).toBe('/vigil/test/audit');
      expect(input.logStreamNames).toBeUndefined();
    }
  });

  it('reads a log that was never written as empty', async () => {
    logs
      .on(FilterLogEventsCommand)
      .rejects(new ResourceNotFoundException({ message: 'no stream', $metadata: {} }));

    await expect(readAll()).resolves.toEqual([]);
  });
});

describe('planLogBatches', () => {
  it('starts a new batch when the next event would pass 1,048,576 bytes', () => {
    const message = 'y'.repeat(250_000);
    const records = Array.from({ length: 5 }, (_, i) => ({ timestamp: T + i, message }));

    const { batches } = planLogBatches(records, T);

    expect(batches.map((b) => b.length)).toEqual([4, 1]);
  });

  it('starts a new batch after 10,000 events', () => {
    const records = Array.from({ length: 10_001 }, (_, i) => ({ timestamp: T, message: `${i}` }));

    const { batches } = planLogBatches(records, T);

    expect(batches.map((b) => b.length)).toEqual([10_000, 1]);
  });

  it('keeps the input order of events that share a timestamp', () => {
    const records = ['c', 'a', 'b'].map((message) => ({ timestamp: T, message }));

    const { batches } = planLogBatches(records, T);

    expect(batches[0]?.map((r) => r.message)).toEqual(['c', 'a', 'b']);
  });

  it('uses a retention period shorter than 14 days as the age limit', () => {
    const old = { timestamp: T - 25 * HOUR, message: 'old' };

    const { batches, rejected } = planLogBatches([old], T, { retentionDays: 1 });

    expect(batches).toEqual([]);
    expect(rejected).toEqual([{ record: old, reason: PLAN_REJECTION.beyondRetention }]);
  });

  it('rejects empty messages and timestamps that are not whole milliseconds', () => {
    const empty = { timestamp: T, message: '' };
    const fractional = { timestamp: T + 0.5, message: 'half' };

    const { rejected } = planLogBatches([empty, fractional], T);

    expect(rejected).toEqual([
      { record: empty, reason: PLAN_REJECTION.emptyMessage },
      { record: fractional, reason: PLAN_REJECTION.invalidTimestamp },
    ]);
  });

  it('splits multi-byte text without cutting a character', () => {
    // The leading ASCII byte puts a part boundary inside a three-byte character.
    const message = `a${'€'.repeat(100_000)}`;

    const { batches } = planLogBatches([{ timestamp: T, message }], T);

    const parts = batches.flat().map((r) => r.message);
    expect(parts).toHaveLength(2);
    for (const part of parts) {
      expect(Buffer.byteLength(part)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      expect(part).not.toContain('\uFFFD');
    }
    expect(parts.map((p) => p.replace(PART, '')).join('')).toBe(message);
  });
});
