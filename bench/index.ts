import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_SESSION_POLICY } from '../functions/identity/session-policy';

/**
 * npm run bench: each phase runs in its own process so peak RSS is measured per phase.
 * Ratios compare rates measured in this same run on this machine.
 * BENCH_INGEST and BENCH_VERIFY override the sizes (comma-separated).
 */
const INGEST_SIZES = (process.env.BENCH_INGEST ?? '10000,40000').split(',').map(Number);
const VERIFY_SIZES = (process.env.BENCH_VERIFY ?? '50000,500000').split(',').map(Number);

function phase(...args: string[]): Record<string, number> {
  const runner = path.join(__dirname, '..', 'bin', 'run-ts.js');
  const out = execFileSync(process.execPath, [runner, path.join(__dirname, 'phase.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop() as string) as Record<string, number>;
}

const DEFAULT_TOUCH_SECONDS = DEFAULT_SESSION_POLICY.touchMs / 1000;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-'));
const rows: string[] = [];

for (const n of INGEST_SIZES) {
  process.stderr.write(`ingest, ${fmt(n)} events\n`);
  const raw = phase('raw-write', String(n));
  const ingest = phase('ingest', String(n));
  rows.push(
    `ingest ${fmt(n)}: ${fmt(ingest.perSecond ?? 0)} events/s = ${((ingest.perSecond ?? 0) / (raw.perSecond ?? 1)).toFixed(2)}x raw BatchWriteItem (${fmt(raw.perSecond ?? 0)} items/s); peak RSS ${fmt(ingest.peakRssMb ?? 0)} MB (store process ${fmt(ingest.storeRssMb ?? 0)} MB)`,
  );
}
for (const n of VERIFY_SIZES) {
  process.stderr.write(`verify, ${fmt(n)} entries\n`);
  const file = path.join(dir, `export-${n}.ndjson`);
  phase('make-export', String(n), file);
  const raw = phase('raw-hash', file);
  const verify = phase('verify', file);
  rows.push(
    `verify ${fmt(n)}: ${fmt(verify.perSecond ?? 0)} entries/s = ${((verify.perSecond ?? 0) / (raw.perSecond ?? 1)).toFixed(2)}x raw SHA-256 over the same bytes (${fmt(raw.perSecond ?? 0)}/s); peak RSS ${fmt(verify.peakRssMb ?? 0)} MB`,
  );
}
process.stderr.write('session check per request\n');
const session = phase('session', '4000');
const ms = (value: number | undefined) => `${(value ?? 0).toFixed(2)} ms`;
const ratio = (value: number | undefined, base: number | undefined) =>
  `${((value ?? 0) / (base ?? 1)).toFixed(2)}x`;
rows.push(
  `session check: p50 ${ms(session.checkP50)} = ${ratio(session.checkP50, session.rawP50)} one raw GetItem (${ms(session.rawP50)}); p99 ${ms(session.checkP99)} = ${ratio(session.checkP99, session.rawP99)} (${ms(session.rawP99)})`,
  `session check that records activity (first request after each ${DEFAULT_TOUCH_SECONDS} s): p50 ${ratio(session.writingP50, session.rawP50)}, p99 ${ratio(session.writingP99, session.rawP99)} one raw GetItem`,
);
process.stderr.write('password hashing\n');
const password = phase('password', '5');
rows.push(
  `password hash: median ${Math.round(password.medianMs ?? 0)} ms at ${(password as unknown as { params: string }).params} (target 50-500 ms)`,
);
fs.rmSync(dir, { recursive: true, force: true });
process.stdout.write(`\n${rows.join('\n')}\n`);
