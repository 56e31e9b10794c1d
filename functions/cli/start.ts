import fs from 'node:fs';
import path from 'node:path';
import { type Config, ConfigError, readConfig } from '../platform/config';
import { startPlatform } from '../platform/local/platform';
import { RUNNING_FILE, projectRoot } from './local';
import { identity } from '../identity/context';
import { enrolmentLink } from './users';

/**
 * `vigil start` (and `npm start`): the whole platform on embedded defaults. Ctrl-C stops it;
 * the data under the data directory stays for the next start.
 *
 * Every setting the functions read is checked before Vigil says it is running: a bad one ends
 * the command with status 1 and one line naming the variable, and whatever was started is
 * stopped. Otherwise the platform would serve, /health would say ok, and each request that
 * reads the setting would fail with a 500.
 */
export async function startCommand(opts: { port?: number; invokePort?: number }): Promise<void> {
  let config: Config;
  let port: number;
  try {
    config = readConfig();
    port = opts.port ?? portFrom(process.env.PORT);
  } catch (error) {
    return refuse(error);
  }
  const platform = await startPlatform({
    root: projectRoot(),
    dataDir: config.dataDir,
    port,
    invokePort: opts.invokePort ?? 3002,
  });
  try {
    // The functions build these services on first use, from the same runtime and environment;
    // building them here reads every identity setting once, and the functions reuse them.
    identity();
  } catch (error) {
    await platform.stop();
    return refuse(error);
  }
  const runningFile = path.join(config.dataDir, RUNNING_FILE);
  fs.writeFileSync(
    runningFile,
    JSON.stringify({
      pid: process.pid,
      dynamoEndpoint: platform.dynamoEndpoint,
      httpUrl: platform.httpUrl,
    }),
    { mode: 0o600 },
  );

  const out = process.stderr;
  out.write(`\nVigil ${config.version} is running locally (data in ${config.dataDir})\n`);
  out.write(`  HTTP API       ${platform.httpUrl}   (GET /health)\n`);
  out.write(
    `  Lambda invoke  ${platform.invokeUrl}   (POST /2015-03-31/functions/{name}/invocations)\n`,
  );
  out.write(`  Store          ${platform.dynamoEndpoint}   (embedded, loopback only)\n`);
  out.write(`  Functions      ${platform.definition.functions.map((f) => f.name).join(', ')}\n`);
  out.write(
    `  Schedules      ${platform.definition.schedules.map((s) => `${s.functionName} ${s.rate}`).join(', ')}\n`,
  );
  await announceFirstOfficer(out);
  out.write(
    `Create a producer key with: npx vigil producers create my-app\nCtrl-C stops everything.\n\n`,
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    out.write('\nstopping Vigil…\n');
    await platform.stop();
    fs.rmSync(runningFile, { force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

/** While no security officer exists: the one-time link for the first one. */
async function announceFirstOfficer(out: NodeJS.WriteStream): Promise<void> {
  const token = await identity().users.bootstrapToken();
  if (!token) return;
  const url = identity().publicUrl;
  out.write('\nNo security officer exists yet. Enrol the first one (one use, 24 hours):\n');
  out.write(`  ${enrolmentLink(token)}\n`);
  out.write(`  or: curl -X POST ${url}/v1/auth/enrol -H 'content-type: application/json' -d \\\n`);
  out.write(
    `    '{"token":"${token}","email":"you@hospital.example","name":"First Last","employeeId":"E-1","password":"<12+ chars>"}'\n\n`,
  );
}

/** PORT from the environment: unset means 3000; anything but a port number is refused. */
function portFrom(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 3000;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError('PORT', 'must be a whole number from 0 to 65535');
  }
  return port;
}

/** Ends `vigil start` with status 1 and one line that names the setting and what is wrong. */
async function refuse(error: unknown): Promise<never> {
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^configuration:\s*/i, '');
  await new Promise<void>((resolve) =>
    process.stderr.write(`vigil: configuration: ${message}; Vigil did not start\n`, () =>
      resolve(),
    ),
  );
  process.exit(1);
}
