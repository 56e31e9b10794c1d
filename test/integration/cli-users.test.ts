import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { withLocalRuntime } from '../../functions/cli/local';
import { identity, resetIdentity } from '../../functions/identity/context';
import { resetAuditLog } from '../../functions/audit/context';
import { ROOT } from '../support/platform';

const run = promisify(execFile);
const VIGIL = path.join(ROOT, 'bin/vigil.js');

/** Operator commands on the local platform's data, run as a person would run them. */
describe('vigil users', () => {
  let dir: string;
  const saved = { ...process.env };
  const vigil = (...args: string[]) =>
    run(process.execPath, [VIGIL, ...args], {
      env: { ...saved, VIGIL_DATA_DIR: dir, VIGIL_ADAPTERS: 'local' },
    });
  /** Works on the same data in this process, while no command runs. */
  const inStore = <T>(work: () => Promise<T>) => {
    process.env.VIGIL_DATA_DIR = dir;
    process.env.VIGIL_ADAPTERS = 'local';
    resetIdentity();
    resetAuditLog();
    return withLocalRuntime(work).finally(() => {
      resetIdentity();
      resetAuditLog();
    });
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-cli-'));
  });
  afterAll(() => {
    process.env = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates an account, unlocks it when it is locked, and audits both under the operator', async () => {
    const created = await vigil(
      'users',
      'create',
      '--email',
      'mary.mahoney@hospital.example',
      '--role',
      'nurse',
      '--employee-id',
      'E-77',
    );
    expect(created.stdout).toMatch(/\/enrol#token=[\w-]{43}\n$/);

    await inStore(async () => {
      const user = await identity().users.byEmail('mary.mahoney@hospital.example');
      await identity().users.setStatus(user?.id as string, 'locked', 'failed_logins');
    });
    const unlocked = await vigil('users', 'unlock', '--email', 'mary.mahoney@hospital.example');
    const refused = await vigil(
      'users',
      'unlock',
      '--email',
      'mary.mahoney@hospital.example',
    ).catch((error: { stderr: string }) => error);
    const exported = await vigil('export', '--format', 'ndjson');

    expect(unlocked.stderr).toBe('mary.mahoney@hospital.example unlocked\n');
    expect(refused).toMatchObject({ stderr: expect.stringContaining('not locked') });
    const operator = `cli:${os.userInfo().username}`;
    const events = exported.stdout
      .split('\n')
      .filter((line) => line.includes('vigil-identity'))
      .map((line) => JSON.parse(line));
    const byOperator = events
      .map((entry) => entry.event ?? entry.body?.event ?? entry)
      .filter((event) => JSON.stringify(event).includes(operator));
    expect(
      byOperator.map((event) => JSON.stringify(event).match(/user_created|unlock/)?.[0]),
    ).toEqual(['user_created', 'unlock']);
    await inStore(async () => {
      const user = await identity().users.byEmail('mary.mahoney@hospital.example');
      expect(user).toMatchObject({ status: 'invited', failedLogins: 0 });
    });
  });
});

/** The audit commands as an operator runs them: what they refuse they name. */
describe('vigil ingest, export and verify', () => {
  let dir: string;
  const saved = { ...process.env };
  const vigil = (...args: string[]) =>
    run(process.execPath, [VIGIL, ...args], {
      env: { ...saved, VIGIL_DATA_DIR: dir, VIGIL_ADAPTERS: 'local' },
    }).catch((error: { code: number; stdout: string; stderr: string }) => error);

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-cli-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names each rejected event by file and line, with its field and reason', async () => {
    const file = path.join(dir, 'events.ndjson');
    fs.writeFileSync(file, '{"userId":"u-1"}\n{"broken\n');

    const res = await vigil('ingest', file);

    expect(res.stdout).toContain('"rejected":2');
    expect(res.stderr).toContain(`rejected ${file}#1: action`);
    expect(res.stderr).toContain(`rejected ${file}#2: (record)`);
  });

  it('refuses a filter key it does not know, a file it cannot write and a key that is none', async () => {
    const filter = await vigil('export', '--format', 'ndjson', '--filter', '{"evil":1}');
    const out = await vigil('export', '--format', 'ndjson', '--out', path.join(dir, 'no/such/x'));
    const notKey = path.join(dir, 'not-a-key.pem');
    fs.writeFileSync(notKey, 'hello');
    fs.writeFileSync(path.join(dir, 'x.ndjson'), '{}\n');
    const key = await vigil('verify', '--file', path.join(dir, 'x.ndjson'), '--public-key', notKey);

    expect(filter).toMatchObject({ code: 1 });
    expect(filter.stderr).toContain('cannot filter by evil');
    expect(out).toMatchObject({ code: 2 });
    expect(out.stderr).toContain('cannot write');
    expect(key).toMatchObject({ code: 2 });
    expect(key.stderr).toContain('is not a PEM public key');
    for (const res of [filter, out, key]) expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
