import fs from 'node:fs';
import path from 'node:path';
import { readConfig } from '../platform/config';
import { startPlatform } from '../platform/local/platform';
import { RUNNING_FILE, projectRoot } from './local';
import { identity } from '../identity/context';
import { enrolmentLink } from './users';

/**
 * `vigil start` (and `npm start`): the whole platform on embedded defaults. Ctrl-C stops it;
 * the data under the data directory stays for the next start.
 */
export async function startCommand(opts: { port?: number; invokePort?: number }): Promise<void> {
  const config = readConfig();
  const port = opts.port ?? Number(process.env.PORT ?? 3000);
  const platform = await startPlatform({
    root: projectRoot(),
    dataDir: config.dataDir,
    port,
    invokePort: opts.invokePort ?? 3002,
  });
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
