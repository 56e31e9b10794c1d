import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/platform';

const VIGIL = path.join(ROOT, 'bin/vigil.js');
/** Long enough for tsx and the embedded store on a slow machine; a hang is killed after it. */
const GIVE_UP_MS = 45_000;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  hung: boolean;
}

/**
 * Runs `vigil start` as an operator would, on free loopback ports and its own data directory.
 * It resolves when the process ends, or when `until` sees what it waits for in stderr, and
 * kills the child by its pid if neither happens in time.
 */
function start(
  dataDir: string,
  env: Record<string, string>,
  until?: RegExp,
): Promise<Outcome & { pid: number }> {
  const child = spawn(process.execPath, [VIGIL, 'start', '--invoke-port', '0'], {
    env: { ...inherited(), VIGIL_DATA_DIR: dataDir, PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  return new Promise((resolve, reject) => {
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, GIVE_UP_MS);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (until?.test(stderr)) {
        clearTimeout(timer);
        resolve({ code: null, signal: null, stderr, hung: false, pid: child.pid as number });
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, hung, pid: child.pid as number });
    });
  });
}

/** This process's environment without Vigil's settings, which other tests may have set. */
function inherited(): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('VIGIL_') && name !== 'PORT'),
  );
}

/** Ends a child that is still running by its pid, and waits until it is gone. */
async function stopByPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let waited = 0; waited < 15_000; waited += 100) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  process.kill(pid, 'SIGKILL');
}

describe('vigil start with a bad setting', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-start-'));
  });
  afterEach(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it.each([
    ['VIGIL_SESSION_IDLE_MINUTES', 'abc', /VIGIL_SESSION_IDLE_MINUTES must be a whole number/],
    ['VIGIL_LOCKOUT_MAX_FAILURES', '0', /VIGIL_LOCKOUT_MAX_FAILURES must be a whole number/],
    ['VIGIL_FEDERATED_PROVISIONING', 'sometimes', /VIGIL_FEDERATED_PROVISIONING must be/],
    ['VIGIL_OIDC_ISSUER', 'https://idp.example.test', /VIGIL_OIDC_AUDIENCE is not set/],
    ['VIGIL_ADAPTERS', 'cloud', /VIGIL_ADAPTERS must be "aws" or "local"/],
    ['PORT', 'eighty', /PORT must be a whole number/],
  ])(
    'refuses %s=%s: status 1, one line naming the variable, never "running"',
    async (name, value, reason) => {
      const outcome = await start(dataDir, { [name]: value });

      expect(outcome.hung).toBe(false);
      expect(outcome.code).toBe(1);
      expect(outcome.stderr).toMatch(reason);
      const lines = outcome.stderr.split('\n').filter((line) => line.trim() !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^vigil: configuration: /);
      expect(lines[0]).toContain(name);
      expect(lines[0]).toMatch(reason);
      expect(outcome.stderr).not.toMatch(/running/i);
      // Nothing tells the operator commands that a platform is up.
      expect(fs.existsSync(path.join(dataDir, 'running.json'))).toBe(false);
    },
  );

  it('exits with status 2 naming the cause when its port is taken, rather than hang', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const outcome = await start(dataDir, { PORT: String(port) });

      expect(outcome.hung).toBe(false);
      expect(outcome.code).toBe(2);
      expect(outcome.stderr).toMatch(/EADDRINUSE/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('still starts, serves /health and stops on SIGTERM when the settings are good', async () => {
    const started = await start(
      dataDir,
      { VIGIL_SESSION_IDLE_MINUTES: '20' },
      /Ctrl-C stops everything/,
    );
    try {
      expect(started.hung).toBe(false);
      expect(started.stderr).toMatch(/is running locally/);
      const url = /HTTP API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(started.stderr)?.[1];
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(200);
      expect(fs.existsSync(path.join(dataDir, 'running.json'))).toBe(true);
    } finally {
      await stopByPid(started.pid);
    }
    expect(fs.existsSync(path.join(dataDir, 'running.json'))).toBe(false);
  });
});
