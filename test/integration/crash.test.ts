import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, nativeEvent } from '../support/platform';

const run = promisify(execFile);
const VIGIL = path.join(ROOT, 'bin/vigil.js');
/** Each round redelivers everything before and adds this many new events. */
const PER_ROUND = 300;
const ROUNDS = 20;
const EVENTS = PER_ROUND * ROUNDS;

/**
 * Kills the ingesting process with SIGKILL at random points of a batch, then redelivers the
 * same file, again and again: nothing accepted may be lost or stored twice.
 */
describe('crash safety of ingest', () => {
  let dir: string;
  let file: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-crash-'));
    file = path.join(dir, 'events.ndjson');
    const lines = Array.from({ length: EVENTS }, (_, i) =>
      JSON.stringify(
        nativeEvent({
          resourceId: `obs-${i}`,
          timestamp: new Date(Date.UTC(2026, 10, 1, 0, 0, i)).toISOString(),
        }),
      ),
    );
    for (let round = 0; round < ROUNDS; round += 1) {
      const upTo = lines.slice(0, (round + 1) * PER_ROUND);
      fs.writeFileSync(path.join(dir, `round-${round}.ndjson`), `${upTo.join('\n')}\n`);
    }
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    env = { ...process.env, VIGIL_DATA_DIR: path.join(dir, 'data'), VIGIL_ADAPTERS: 'local' };
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(`loses and duplicates nothing across ${ROUNDS} kills and redeliveries`, async () => {
    const killedMidway: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const batch = path.join(dir, `round-${round}.ndjson`);
      const child = spawn(process.execPath, [VIGIL, 'ingest', batch, '--producer', 'crash'], {
        env,
        stdio: 'ignore',
      });
      const delay = 600 + Math.floor(Math.random() * 1500);
      const exited = new Promise<number | null>((resolve) =>
        child.once('exit', (code) => resolve(code)),
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const code = await exited;
      clearTimeout(timer);
      if (code === null) killedMidway.push(delay);
    }
    expect(killedMidway.length).toBeGreaterThan(0);

    const { stdout } = await run(process.execPath, [VIGIL, 'ingest', file, '--producer', 'crash'], {
      env,
    });
    const totals = JSON.parse(stdout.trim().split('\n').pop() as string);
    expect(totals.failed).toBe(0);
    expect(totals.accepted + totals.duplicate).toBe(EVENTS);

    const verify = await run(process.execPath, [VIGIL, 'verify', '--json'], { env });
    const report = JSON.parse(verify.stdout);
    expect(report.ok).toBe(true);
    const stream = report.streams.find((s: { stream: string }) => s.stream === 'cli-crash');
    expect(stream.entries).toBe(EVENTS);
  }, 600_000);
});
