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
