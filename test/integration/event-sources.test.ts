import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { handler as kinesisHandler } from '../../functions/audit/handlers/ingest-kinesis';
import { handler as sqsHandler } from '../../functions/audit/handlers/ingest-sqs';
import { resetAuditLog } from '../../functions/audit/context';
import { DynamoStore } from '../../functions/platform/store/dynamo';
import { runtime, setRuntime } from '../../functions/platform/runtime';
import type { Item, Store } from '../../functions/platform/ports';
import { ROOT, nativeEvent, startTestPlatform, type TestPlatform } from '../support/platform';

const corpus = (file: string) =>
  JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/aws-lambda-events', file), 'utf8'));

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
const gz64 = (value: unknown) => zlib.gzipSync(JSON.stringify(value)).toString('base64');

async function invoke(t: TestPlatform, name: string, event: unknown) {
  const res = await fetch(`${t.platform.invokeUrl}/2015-03-31/functions/${name}/invocations`, {
    method: 'POST',
    body: JSON.stringify(event),
  });
  return {
    status: res.status,
    error: res.headers.get('x-amz-function-error'),
    body: await res.json(),
  };
}

async function countEntries(stream: string): Promise<number> {
  let n = 0;
  const rt = runtime();
  for await (const _ of rt.store.query(rt.config.auditTable, {
    index: 'gsi1',
    partition: ['gsi1pk', `S#${stream}`],
  }))
    n += 1;
  return n;
}

function kinesisRecord(seq: string, data: string, shard = 'shardId-000000000007') {
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: 'p',
      sequenceNumber: seq,
      data,
      approximateArrivalTimestamp: 1,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${shard}:${seq}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/vigil',
    awsRegion: 'us-east-1',
    eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/audit',
  };
}

function sqsRecord(messageId: string, body: string) {
  return {
    messageId,
    receiptHandle: 'r',
    body,
    attributes: {},
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:vigil-audit',
    awsRegion: 'us-east-1',
  };
}

describe('event sources through the Lambda Invoke API', () => {
  let t: TestPlatform;
  beforeEach(async () => {
    t = await startTestPlatform();
  });
  afterEach(() => t.stop());

  it.each([
    ['sqs', 'auditIngestSqs', 'aws-lambda-go/sqs-event.json'],
    ['sqs', 'auditIngestSqs', 'powertools-python/sqsEvent.json'],
    ['sqs', 'auditIngestSqs', 'powertools-python/snsSqsEvent.json'],
    ['sqs', 'auditIngestSqs', 'powertools-python/sqsDlqTriggerEvent.json'],
    ['sqs', 'auditIngestSqs', 'powertools-typescript/sqs-base.json'],
    ['kinesis', 'auditIngestKinesis', 'aws-lambda-go/kinesis-event.json'],
    ['kinesis', 'auditIngestKinesis', 'powertools-python/kinesisStreamEvent.json'],
    ['kinesis', 'auditIngestKinesis', 'powertools-python/kinesisStreamEventOneRecord.json'],
    ['kinesis', 'auditIngestKinesis', 'powertools-python/kinesisStreamCloudWatchLogsEvent.json'],
    ['kinesis', 'auditIngestKinesis', 'powertools-typescript/kinesis-stream.json'],
    ['kinesis', 'auditIngestKinesis', 'powertools-typescript/kinesis-dynamodb-stream.json'],
    ['kinesis', 'auditIngestKinesis', 'powertools-typescript/kinesis-stream-cloudwatch-logs.json'],
    ['logs', 'auditIngestLogs', 'aws-lambda-go/cloudwatch-logs-event.json'],
    ['logs', 'auditIngestLogs', 'powertools-python/cloudWatchLogEvent.json'],
    ['logs', 'auditIngestLogs', 'powertools-typescript/cloudwatch-base.json'],
  ])(
    'quarantines the non-audit payloads of %s corpus event %s without failing the batch',
    async (_kind, fn, file) => {
      const res = await invoke(t, fn, corpus(file));
      expect(res.error).toBeNull();
      if (fn !== 'auditIngestLogs') expect(res.body).toEqual({ batchItemFailures: [] });
      const rt = runtime();
      let quarantined = 0;
      for await (const _ of rt.store.query(rt.config.auditTable, {
        index: 'gsi1',
        partition: ['gsi1pk', 'QUARANTINE'],
      }))
        quarantined += 1;
      expect(quarantined).toBeGreaterThan(0);
    },
  );

  it('stores audit events from SQS and answers the partial-batch shape', async () => {
    const event = {
      Records: [
        sqsRecord('m-1', JSON.stringify([nativeEvent({ id: 'q-1' })])),
        sqsRecord('m-2', '{bad'),
      ],
    };
    const res = await invoke(t, 'auditIngestSqs', event);
    expect(res.body).toEqual({ batchItemFailures: [] });
    expect(await countEntries('sqs-vigil-audit')).toBe(1);
    await invoke(t, 'auditIngestSqs', event);
    expect(await countEntries('sqs-vigil-audit')).toBe(1);
  });

  it('takes CloudWatch Logs subscriptions, skips control messages, uses the log event time', async () => {
    const payload = {
      messageType: 'DATA_MESSAGE',
      owner: '123456789012',
      logGroup: '/ehr/audit',
      logStream: 'a',
      subscriptionFilters: ['vigil'],
      logEvents: [
        {
          id: '3719',
          timestamp: Date.parse('2026-11-02T13:00:00Z'),
          message: JSON.stringify({ ...nativeEvent(), timestamp: undefined }),
        },
      ],
    };
    const res = await invoke(t, 'auditIngestLogs', { awslogs: { data: gz64(payload) } });
    expect(res.body).toEqual({ accepted: 1, duplicate: 0, rejected: 0 });
    const control = {
      ...payload,
      messageType: 'CONTROL_MESSAGE',
      logEvents: [{ id: '1', timestamp: 1, message: 'CWL CONTROL MESSAGE' }],
    };
    expect((await invoke(t, 'auditIngestLogs', { awslogs: { data: gz64(control) } })).body).toEqual(
      { accepted: 0, duplicate: 0, rejected: 0 },
    );
    await invoke(t, 'auditIngestLogs', { awslogs: { data: gz64(payload) } });
    expect(await countEntries('logs--ehr-audit')).toBe(1);
  });

  it('reports the lowest failed Kinesis sequence number as the checkpoint and stores each record once', async () => {
    const seqs = [
      '49590338271490256608559692538361571095921575989136588801',
      '49590338271490256608559692538361571095921575989136588802',
      '49590338271490256608559692538361571095921575989136588803',
      '49590338271490256608559692538361571095921575989136588804',
    ];
    const records = seqs.map((seq, i) =>
      kinesisRecord(seq, b64(nativeEvent({ resourceId: `obs-k${i}` }))),
    );
    const real = runtime();
    let throttle = true;
    const flaky: Store = Object.create(real.store) as Store;
    flaky.batchPut = async (table: string, items: Item[]) => {
      const blocked = throttle
        ? items.filter((i) => String(i.body ?? '').includes(seqs[1] as string))
        : [];
      const { unprocessed } = await real.store.batchPut(
        table,
        items.filter((i) => !blocked.includes(i)),
      );
      return { unprocessed: [...unprocessed, ...blocked] };
    };
    setRuntime({ ...real, store: flaky });
    resetAuditLog();

    const first = await kinesisHandler({ Records: records } as never);
    expect(first).toEqual({ batchItemFailures: [{ itemIdentifier: seqs[1] }] });

    throttle = false;
    const second = await kinesisHandler({ Records: records.slice(1) } as never);
    expect(second).toEqual({ batchItemFailures: [] });
    expect(await countEntries('kinesis-audit-shardId-000000000007')).toBe(4);
    setRuntime(real);
    resetAuditLog();
  });

  it('quarantines a poison Kinesis record instead of reporting it, so the shard moves on', async () => {
    const records = [
      kinesisRecord('1001', Buffer.from('not an event').toString('base64')),
      kinesisRecord('1002', b64(nativeEvent())),
    ];
    const res = await invoke(t, 'auditIngestKinesis', { Records: records });
    expect(res.body).toEqual({ batchItemFailures: [] });
    expect(await countEntries('kinesis-audit-shardId-000000000007')).toBe(1);
  });

  it('passes over a Kinesis record without data and stores the rest of its batch', async () => {
    const broken = kinesisRecord('2001', '', 'shardId-000000000009') as Record<string, unknown>;
    (broken.kinesis as Record<string, unknown>).data = null;
    const records = [
      kinesisRecord('2000', b64(nativeEvent({ resourceId: 'obs-before' })), 'shardId-000000000009'),
      broken,
      kinesisRecord('2002', b64(nativeEvent({ resourceId: 'obs-after' })), 'shardId-000000000009'),
    ];
    const res = await invoke(t, 'auditIngestKinesis', { Records: records });
    expect(res.body).toEqual({ batchItemFailures: [] });
    expect(await countEntries('kinesis-audit-shardId-000000000009')).toBe(2);
  });

  it('fails no good SQS message for one without a body', async () => {
    const broken = sqsRecord('p-2', '') as Record<string, unknown>;
    delete broken.body;
    const event = {
      Records: [
        sqsRecord('p-1', JSON.stringify(nativeEvent({ id: 'poison-neighbour-1' }))),
        broken,
        sqsRecord('p-3', JSON.stringify(nativeEvent({ id: 'poison-neighbour-3' }))),
      ],
    };
    const before = await countEntries('sqs-vigil-audit');
    const res = await invoke(t, 'auditIngestSqs', event);
    expect(res.body).toEqual({ batchItemFailures: [] });
    expect(await countEntries('sqs-vigil-audit')).toBe(before + 2);
  });

  it('reads Lambda runtime log lines and quarantines a delivery that is not gzip', async () => {
    const line = `2026-11-02T13:00:00.000Z\tc0ffee\tINFO\t${JSON.stringify(nativeEvent({ id: 'from-lambda-line' }))}`;
    const payload = {
      messageType: 'DATA_MESSAGE',
      owner: '123456789012',
      logGroup: '/aws/lambda/ehr',
      logStream: 'b',
      subscriptionFilters: ['vigil'],
      logEvents: [{ id: '4001', timestamp: Date.parse('2026-11-02T13:00:00Z'), message: line }],
    };
    const read = await invoke(t, 'auditIngestLogs', { awslogs: { data: gz64(payload) } });
    expect(read.body).toEqual({ accepted: 1, duplicate: 0, rejected: 0 });
    const garbage = await invoke(t, 'auditIngestLogs', { awslogs: { data: 'bm90IGd6aXA=' } });
    expect(garbage.body).toEqual({ accepted: 0, duplicate: 0, rejected: 1 });
  });
});

describe('unprocessed batch items', () => {
  let t: TestPlatform;
  beforeEach(async () => {
    t = await startTestPlatform();
  });
  afterEach(() => t.stop());

  /** A client over the real embedded store whose BatchWriteItem leaves items unprocessed on cue. */
  function scriptedStore(script: (call: number, items: Item[]) => Item[]) {
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: t.platform.dynamoEndpoint,
        region: 'us-east-1',
        // DynamoDB Local keeps one database per access key: use the platform's.
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
    );
    const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
    let calls = 0;
    (client as unknown as { send: unknown }).send = async (command: unknown) => {
      if (!(command instanceof BatchWriteCommand)) return send(command);
      const [table, requests] = Object.entries(command.input.RequestItems ?? {})[0] ?? [];
      const items = (requests ?? []).map((r) => r.PutRequest?.Item as Item);
      const held = script(calls++, items);
      const written = items.filter((i) => !held.includes(i));
      if (written.length > 0)
        await send(
          new BatchWriteCommand({
            RequestItems: { [table as string]: written.map((Item) => ({ PutRequest: { Item } })) },
          }),
        );
      return {
        UnprocessedItems:
          held.length > 0
            ? { [table as string]: held.map((Item) => ({ PutRequest: { Item } })) }
            : {},
      };
    };
    return new DynamoStore(client, { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 });
  }

  const sixtyMessages = () => ({
    Records: Array.from({ length: 60 }, (_, i) =>
      sqsRecord(`m-${i}`, JSON.stringify(nativeEvent({ id: `b09-${i}` }))),
    ),
  });

  it('retries unprocessed items with backoff until all 60 are stored', async () => {
    const real = runtime();
    const store = scriptedStore((call, items) =>
      call === 0 ? items.slice(0, 7) : call === 1 ? items.slice(0, 2) : [],
    );
    setRuntime({ ...real, store });
    resetAuditLog();
    expect(await sqsHandler(sixtyMessages() as never)).toEqual({ batchItemFailures: [] });
    expect(await countEntries('sqs-vigil-audit')).toBe(60);
    setRuntime(real);
    resetAuditLog();
  });

  it('fails exactly the messages whose items stay unprocessed past the retry limit', async () => {
    const real = runtime();
    const stuck = new Set(['b09-5', 'b09-17', 'b09-42']);
    const store = scriptedStore((_call, items) =>
      items.filter((i) => [...stuck].some((id) => String(i.body ?? '').includes(`"id":"${id}"`))),
    );
    setRuntime({ ...real, store });
    resetAuditLog();
    const res = await sqsHandler(sixtyMessages() as never);
    expect(res.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual([
      'm-17',
      'm-42',
      'm-5',
    ]);
    setRuntime(real);
    resetAuditLog();
  });
});
