import fs from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { auditLog } from '../../functions/audit/context';
import { ChainAppender } from '../../functions/audit/chain/appender';
import { verifyLog } from '../../functions/audit/verify';
import { canonicalize } from '../../functions/audit/chain/canonical';
import { linkHash } from '../../functions/audit/chain/hashes';
import { generateSigningKeyPair, LocalSigner } from '../../functions/platform/keys/kms';
import { runtime } from '../../functions/platform/runtime';
import { indexAttributes, padSeq } from '../../functions/audit/records';
import type { NativeEvent } from '../../functions/audit/event';
import {
  ingestNumbered,
  nativeEvent,
  startTestPlatform,
  type TestPlatform,
} from '../support/platform';

type Row = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- raw items

describe('tamper evidence', () => {
  let t: TestPlatform;
  let db: DynamoDBDocumentClient;
  const table = () => runtime().config.auditTable;

  const ingest = (stream: string, from: number, count: number) =>
    ingestNumbered(stream, from, count, { producer: 'tamper-test' });
  const entries = async (stream: string): Promise<Row[]> => {
    const out = await db.send(
      new QueryCommand({
        TableName: table(),
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :p',
        ExpressionAttributeValues: { ':p': `S#${stream}` },
      }),
    );
    return (out.Items ?? []) as Row[];
  };
  const at = async (stream: string, seq: number) =>
    (await entries(stream)).find((e) => e.seq === seq) as Row;
  const put = (item: Row) => db.send(new PutCommand({ TableName: table(), Item: item }));
  const remove = (item: Row) =>
    db.send(new DeleteCommand({ TableName: table(), Key: { pk: item.pk, sk: item.sk } }));
  const verify = () => {
    const rt = runtime();
    return verifyLog({ store: rt.store, table: table(), sink: rt.sink, signer: rt.signer });
  };
  const problemsOf = async (stream: string) =>
    (await verify()).streams.find((s) => s.stream === stream)?.problems;

  beforeEach(async () => {
    t = await startTestPlatform();
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: t.platform.dynamoEndpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
    );
    for (const batch of [0, 10, 20]) await ingest('s', batch + 1, 10);
  });
  afterEach(async () => {
    db.destroy();
    await t.stop();
  });

  it('verifies an untouched log', async () => {
    const report = await verify();
    expect(report.ok).toBe(true);
    expect(report.streams.find((s) => s.stream === 's')).toMatchObject({
      entries: 30,
      unattested: 0,
    });
  });

  it('names an entry whose field was edited', async () => {
    const entry = await at('s', 12);
    await put({
      ...entry,
      body: entry.body.replace('"userId":"dr-house"', '"userId":"dr-wilson"'),
    });
    const problems = await problemsOf('s');
    expect(problems?.[0]).toMatchObject({ kind: 'altered', seq: 12, id: entry.pk.slice(2) });
  });

  it('names an entry whose index keys were edited to hide it from a patient report', async () => {
    const entry = await at('s', 7);
    await put({ ...entry, gsi2pk: 'P#someone-else' });
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'altered', seq: 7 });
  });

  it('names the place of a deleted entry', async () => {
    await remove(await at('s', 12));
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'removed', seq: 12 });
  });

  it('names a forged entry inserted with a sequence number already taken', async () => {
    const victim = await at('s', 12);
    const forgedBody = victim.body.replace('obs-12', 'obs-forged');
    await put({
      ...victim,
      pk: 'E#forged',
      body: forgedBody,
      hash: linkHash(victim.prevHash, forgedBody),
    });
    // Two entries with one index key come back in no defined order: whichever is read second
    // is reported as inserted, and the forged one fails its own checks when read first.
    const first = (await problemsOf('s'))?.[0];
    expect(first?.seq).toBe(12);
    expect(['inserted', 'altered']).toContain(first?.kind);
  });

  it('names a forged entry inserted by renumbering everything after it', async () => {
    const all = (await entries('s')).sort((a, b) => a.seq - b.seq);
    for (const entry of all.filter((e) => e.seq >= 12).reverse()) {
      await put({ ...entry, seq: entry.seq + 1, gsi1sk: padSeq(entry.seq + 1) });
    }
    // A careful forger: a plausible body with its own id, chained to entry 11, indexes to match.
    const before = all.find((e) => e.seq === 11) as Row;
    const forged = { ...JSON.parse(before.body), id: 'f'.repeat(32), eventKey: 'forged', seq: 12 };
    const body = canonicalize(forged);
    await put({
      ...before,
      ...indexAttributes(forged),
      pk: `E#${forged.id}`,
      seq: 12,
      body,
      prevHash: before.hash,
      hash: linkHash(before.hash, body),
    });
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'inserted', seq: 12 });
  });

  it('names two swapped entries', async () => {
    const a = await at('s', 12);
    const b = await at('s', 13);
    await put({ ...a, seq: 13, gsi1sk: padSeq(13) });
    await put({ ...b, seq: 12, gsi1sk: padSeq(12) });
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'reordered', seq: 12 });
  });

  it('detects a tail truncated after the last checkpoint', async () => {
    for (const entry of (await entries('s')).filter((e) => e.seq > 26)) await remove(entry);
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'truncated', seq: 27 });
  });

  it('detects a tail truncated before it was signed, from the head', async () => {
    const head = await auditLog().appender.append('s', [
      {
        id: 'f'.repeat(32),
        eventKey: 'unsigned',
        stream: 's',
        source: 'cli',
        producer: 'tamper-test',
        format: 'native',
        event: nativeEvent({ id: 'unsigned' }) as never,
      },
    ]);
    expect(head.head.seq).toBe(31);
    await remove(await at('s', 31));
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'truncated', seq: 31 });
  });

  it('detects a forged checkpoint signature', async () => {
    const file = path.join(t.dataDir, 'logs', 'checkpoints.ndjson');
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const last = JSON.parse(JSON.parse(lines[lines.length - 1] as string).m);
    const mallory = new LocalSigner({ keyId: last.keyId, ...generateSigningKeyPair() });
    const forged = { ...last, headHash: '1'.repeat(64) };
    const { signature: _dropped, ...body } = forged;
    forged.signature = (await mallory.sign(Buffer.from(canonicalize(body)))).toString('base64');
    fs.appendFileSync(file, `${JSON.stringify({ t: Date.now(), m: JSON.stringify(forged) })}\n`);
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'checkpoint-forged', seq: 30 });
  });

  it('detects a chain rewritten consistently but not matching its signed checkpoint', async () => {
    const all = (await entries('s')).sort((a, b) => a.seq - b.seq);
    let prev = (all.find((e) => e.seq === 14) as Row).hash as string;
    for (const entry of all.filter((e) => e.seq >= 15)) {
      const body =
        entry.seq === 15 ? entry.body.replace('"action":"view"', '"action":"create"') : entry.body;
      const hash = linkHash(prev, body);
      await put({ ...entry, body, prevHash: prev, hash });
      prev = hash;
    }
    const problems = await problemsOf('s');
    expect(problems?.[0]).toMatchObject({ kind: 'checkpoint-mismatch', seq: 11 });
    expect(problems?.[0]?.detail).toContain('11..20');
  });

  it('notices the checkpoint log cut away, from the copy kept in the store', async () => {
    fs.writeFileSync(path.join(t.dataDir, 'logs', 'checkpoints.ndjson'), '');
    const report = await verify();
    expect(report.ok).toBe(false);
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'checkpoint-missing', seq: 10 });
  });

  it('notices one older line taken out of the checkpoint log', async () => {
    const file = path.join(t.dataDir, 'logs', 'checkpoints.ndjson');
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const kept = lines.filter((line) => JSON.parse(JSON.parse(line).m).seq !== 20);
    expect(kept).toHaveLength(lines.length - 1);
    fs.writeFileSync(file, `${kept.join('\n')}\n`);

    const report = await verify();

    expect(report.ok).toBe(false);
    expect((await problemsOf('s'))?.[0]).toMatchObject({ kind: 'checkpoint-missing', seq: 20 });
  });

  it('reports an unreadable checkpoint line instead of failing', async () => {
    fs.appendFileSync(path.join(t.dataDir, 'logs', 'checkpoints.ndjson'), 'not json{{\n');
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(report.firstProblem?.detail).toContain('not checkpoints');
    expect(report.streams.find((r) => r.stream === 's')?.problems).toEqual([]);
  });

  it('treats a batch a stopped writer committed but did not store as pending, not tampering', async () => {
    const real = runtime();
    const stalled = Object.create(real.store) as typeof real.store;
    stalled.batchPut = async (_table, items) => ({ unprocessed: items });
    const appender = new ChainAppender(stalled, table(), real.clock);
    const event = nativeEvent({ id: 'stalled' }) as NativeEvent;
    await appender.append('s', [
      {
        id: 'e'.repeat(32),
        eventKey: 'stalled',
        stream: 's',
        source: 'cli',
        producer: 'tamper-test',
        format: 'native',
        event,
      },
    ]);
    const report = await verify();
    expect(report.ok).toBe(true);
    expect(report.streams.find((r) => r.stream === 's')).toMatchObject({ entries: 30, pending: 1 });
  });
});
