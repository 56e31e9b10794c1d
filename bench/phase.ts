import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AuditLog } from '../functions/audit/service';
import { canonicalize } from '../functions/audit/chain/canonical';
import { MerkleFrontier, linkHash, GENESIS_HASH } from '../functions/audit/chain/hashes';
import { checkpointMessage, type CheckpointBody } from '../functions/audit/chain/checkpoints';
import { verifyExport, EXPORT_TYPE } from '../functions/audit/export';
import { entryItem, recordIdOf, type EntryBody } from '../functions/audit/records';
import { LocalSigner, generateSigningKeyPair } from '../functions/platform/keys/kms';
import { FileLogSink } from '../functions/platform/logsink/file';
import { silentLog } from '../functions/platform/logger';
import { systemClock } from '../functions/platform/ports';
import { DEFAULT_SESSION_POLICY, SessionService } from '../functions/identity/sessions';
import { keys } from '../functions/identity/model';
import { benchPasswordHash } from './passwords';
import { DynamoStore } from '../functions/platform/store/dynamo';
import { loadDefinition } from '../functions/platform/local/definition';
import { ensureTables } from '../functions/platform/local/tables';

/**
 * One benchmark phase in its own process, so its peak RSS is its own. Prints one JSON line.
 * Phases: raw-write N, ingest N, raw-hash FILE, verify FILE, make-export N FILE.
 */
const BATCH = 500;

function event(i: number) {
  return {
    id: `bench-${i}`,
    userId: `user-${i % 300}`,
    userRole: 'nurse',
    action: 'view' as const,
    resourceType: 'Observation',
    resourceId: `obs-${i}`,
    patientId: `p-${i % 5000}`,
    fieldsAccessed: ['valueQuantity', 'effectiveDateTime'],
    ipAddress: '10.0.0.7',
    userAgent: 'EHR/5.2',
    timestamp: new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString(),
    sessionId: `s-${i % 1000}`,
    purposeOfUse: 'TREAT',
    application: 'ehr',
    outcome: 'success' as const,
  };
}

function progress(label: string, done: number, total: number) {
  if (done % 5000 !== 0 && done !== total) return;
  // Rewritten in place on a terminal; one line each in a log, and the last always ends one.
  const end = done === total || !process.stderr.isTTY ? '\n' : '\r';
  process.stderr.write(`  ${label} ${done}/${total}${end}`);
}

/**
 * The embedded store in a process of its own, so that the phase's peak RSS is the pipeline's
 * and the store's is reported apart (in `npm start` both share one process).
 */
async function startStoreProcess(dir: string) {
  const script = `const s=require(${JSON.stringify(require.resolve('dynalite'))})({createTableMs:0,path:${JSON.stringify(dir)}});
s.listen(0,'127.0.0.1',()=>process.stdout.write(s.address().port+'\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim())));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    peakRssMb: () => {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    },
    stop: () => child.kill('SIGTERM'),
  };
}

async function withStore<T extends object>(
  work: (store: DynamoStore, table: string) => Promise<T>,
): Promise<T & { storeRssMb: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-'));
  const dynamo = await startStoreProcess(dir);
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  });
  await ensureTables(client, loadDefinition(path.resolve(__dirname, '..')).tables, {
    IdentityTable: 'bench-identity',
    AuditTable: 'bench',
  });
  const store = new DynamoStore(
    DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }),
  );
  try {
    const result = await work(store, 'bench');
    return { ...result, storeRssMb: dynamo.peakRssMb() };
  } finally {
    client.destroy();
    dynamo.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function rawWrite(n: number) {
  return withStore(async (store, table) => {
    const started = performance.now();
    let prev = GENESIS_HASH;
    for (let i = 0; i < n; i += BATCH) {
      const items = [];
      for (let j = i; j < Math.min(n, i + BATCH); j += 1) {
        const body: EntryBody = {
          id: recordIdOf(`k${j}`),
          eventKey: `k${j}`,
          stream: 'raw',
          seq: j + 1,
          source: 'cli',
          producer: 'bench',
          format: 'native',
          receivedAt: new Date().toISOString(),
          event: event(j),
        };
        const canonical = canonicalize(body);
        items.push(entryItem(body, canonical, prev, prev));
      }
      await store.batchPut(table, items);
      progress('raw BatchWriteItem', Math.min(n, i + BATCH), n);
    }
    return { perSecond: n / ((performance.now() - started) / 1000) };
  });
}

async function ingest(n: number) {
  return withStore(async (store, table) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-sink-'));
    const signer = new LocalSigner({ keyId: 'bench', ...generateSigningKeyPair() });
    const log = new AuditLog({
      store,
      table,
      signer,
      sink: new FileLogSink(dir),
      clock: systemClock,
      log: silentLog,
    });
    const started = performance.now();
    for (let i = 0; i < n; i += BATCH) {
      const items = [];
      for (let j = i; j < Math.min(n, i + BATCH); j += 1) {
        items.push({
          ref: j,
          decoded: { format: 'native' as const, parsed: { ok: true as const, value: event(j) } },
        });
      }
      await log.ingest({ source: 'cli', stream: 'bench', producer: 'bench' }, items);
      progress('ingest', Math.min(n, i + BATCH), n);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    return { perSecond: n / ((performance.now() - started) / 1000) };
  });
}

/** Writes a verifiable export of n entries directly, without a store. */
async function makeExport(n: number, file: string) {
  const pair = generateSigningKeyPair();
  const signer = new LocalSigner({ keyId: 'bench', ...pair });
  const out = fs.createWriteStream(file);
  const write = (line: string) =>
    out.write(`${line}\n`) ? undefined : new Promise<void>((r) => out.once('drain', () => r()));
  await write(
    JSON.stringify({
      type: EXPORT_TYPE,
      version: 1,
      exportedAt: new Date().toISOString(),
      filtered: false,
    }),
  );
  const lines: string[] = [];
  const frontier = MerkleFrontier.empty();
  let prev = GENESIS_HASH;
  for (let i = 0; i < n; i += 1) {
    const body: EntryBody = {
      id: recordIdOf(`k${i}`),
      eventKey: `k${i}`,
      stream: 'bench',
      seq: i + 1,
      source: 'cli',
      producer: 'bench',
      format: 'native',
      receivedAt: '2026-12-01T00:00:00.000Z',
      event: event(i),
    };
    const canonical = canonicalize(body);
    const hash = linkHash(prev, canonical);
    frontier.append(hash);
    const meta = JSON.stringify({
      type: 'entry',
      stream: 'bench',
      seq: i + 1,
      id: body.id,
      hash,
      prevHash: prev,
    });
    lines.push(`${meta.slice(0, -1)},"record":${canonical}}`);
    prev = hash;
  }
  const cp: CheckpointBody = {
    stream: 'bench',
    seq: n,
    headHash: prev,
    merkleRoot: frontier.root(),
    at: new Date().toISOString(),
    keyId: 'bench',
  };
  const signature = (await signer.sign(checkpointMessage(cp))).toString('base64');
  await write(JSON.stringify({ type: 'checkpoint', ...cp, signature }));
  await write(JSON.stringify({ type: 'head', stream: 'bench', seq: n }));
  for (const line of lines) await write(line);
  await new Promise<void>((r) => out.end(() => r()));
  fs.writeFileSync(`${file}.pub.pem`, pair.publicKeyPem);
  return { entries: n, bytes: fs.statSync(file).size };
}

/** SHA-256 over the exact bytes verification hashes, read the same way, and nothing else. */
async function rawHash(file: string) {
  const started = performance.now();
  let n = 0;
  let rest = '';
  for await (const chunk of fs.createReadStream(file, {
    highWaterMark: 1 << 20,
    encoding: 'utf8',
  })) {
    const lines = (rest + (chunk as string)).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const mark = line.indexOf(',"record":');
      if (mark < 0) continue;
      crypto.hash('sha256', line.slice(mark + 10, -1));
      n += 1;
    }
  }
  return { perSecond: n / ((performance.now() - started) / 1000), entries: n };
}

async function verify(file: string) {
  const key = fs.readFileSync(`${file}.pub.pem`, 'utf8');
  const started = performance.now();
  const report = await verifyExport(fs.createReadStream(file, { highWaterMark: 1 << 20 }), key);
  if (!report.ok) throw new Error('benchmark export did not verify');
  return {
    perSecond: report.entries / ((performance.now() - started) / 1000),
    entries: report.entries,
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/**
 * A session check per request against one raw GetItem of the same item on the same embedded
 * store, interleaved so both see the same load. Back-to-back requests of one session are served
 * from a read; `writing` is the same check under a policy that records activity on every
 * request, the cost the first request after each touch span pays.
 */
async function sessionCheck(n: number) {
  return withStore(async (store) => {
    const table = 'bench-identity';
    const audit = async () => undefined;
    const start = async (touchMs: number) => {
      const service = new SessionService(
        store,
        table,
        systemClock,
        { ...DEFAULT_SESSION_POLICY, touchMs },
        audit,
      );
      const { token } = await service.create(
        { id: `bench-user-${touchMs}`, roles: ['nurse'] },
        { ip: '127.0.0.1', mfa: true, method: 'password' },
      );
      return { service, token, key: keys.session(crypto.hash('sha256', token, 'hex')) };
    };
    const usual = await start(DEFAULT_SESSION_POLICY.touchMs);
    const writing = await start(0);
    const times = { raw: [] as number[], check: [] as number[], writing: [] as number[] };
    const timed = async (into: number[], work: () => Promise<unknown>) => {
      const t = performance.now();
      const result = await work();
      into.push(performance.now() - t);
      return result;
    };
    for (let i = 0; i < n; i += 1) {
      await timed(times.raw, () => store.get(table, usual.key));
      for (const [into, session] of [
        [times.check, usual],
        [times.writing, writing],
      ] as const) {
        const result = (await timed(into, () =>
          session.service.check(session.token, { ip: '127.0.0.1' }),
        )) as { ok: boolean };
        if (!result.ok) throw new Error('a benchmark session stopped being valid');
      }
      progress('session checks', i + 1, n);
    }
    return {
      rawP50: percentile(times.raw, 50),
      rawP99: percentile(times.raw, 99),
      checkP50: percentile(times.check, 50),
      checkP99: percentile(times.check, 99),
      writingP50: percentile(times.writing, 50),
      writingP99: percentile(times.writing, 99),
    };
  });
}

async function main() {
  const [phase, arg, file] = process.argv.slice(2);
  const n = Number(arg);
  const phases: Record<string, () => Promise<object>> = {
    'raw-write': () => rawWrite(n),
    ingest: () => ingest(n),
    'make-export': () => makeExport(n, file as string),
    'raw-hash': () => rawHash(arg as string),
    verify: () => verify(arg as string),
    session: () => sessionCheck(n),
    password: () => benchPasswordHash(n),
  };
  const result = await phases[phase as string]?.();
  if (!result) throw new Error(`unknown phase ${phase}`);
  process.stdout.write(
    `${JSON.stringify({ ...result, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
  );
}

void main();
