import fs from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readConfig } from '../platform/config';
import { silentLog } from '../platform/logger';
import { buildRuntime, setRuntime, type Runtime } from '../platform/runtime';
import { loadDefinition } from '../platform/local/definition';
import { startEmbeddedDynamo } from '../platform/local/embedded-dynamo';
import { ensureTables, localTableNames } from '../platform/local/tables';

/** Written by `vigil start` so that operator commands reach the running platform's store. */
export const RUNNING_FILE = 'running.json';

export interface RunningPlatform {
  pid: number;
  dynamoEndpoint: string;
  httpUrl: string;
}

export const projectRoot = () => path.resolve(__dirname, '..', '..');
export const dataDir = () => readConfig().dataDir;

export function readRunning(dir: string): RunningPlatform | undefined {
  try {
    const running = JSON.parse(
      fs.readFileSync(path.join(dir, RUNNING_FILE), 'utf8'),
    ) as RunningPlatform;
    process.kill(running.pid, 0);
    return running;
  } catch {
    return undefined;
  }
}

/**
 * Runs an operator command over the local platform's data. If the platform is running, its
 * store is used (the embedded server holds the files' lock); otherwise the store is opened
 * here for the duration of the command.
 */
export async function withLocalRuntime<T>(work: (rt: Runtime) => Promise<T>): Promise<T> {
  const dir = dataDir();
  const running = readRunning(dir);
  const embedded = running
    ? undefined
    : await startEmbeddedDynamo({ path: path.join(dir, 'dynamo') });
  const endpoint = running?.dynamoEndpoint ?? (embedded?.endpoint as string);

  process.env.VIGIL_DYNAMODB_ENDPOINT = endpoint;
  // Links the CLI prints point at the running platform, whatever port it was given.
  if (running && !process.env.VIGIL_PUBLIC_URL) process.env.VIGIL_PUBLIC_URL = running.httpUrl;
  process.env.VIGIL_DATA_DIR = dir;
  const config = readConfig();
  if (config.adapters !== 'local')
    throw new Error('the vigil CLI works on the local platform only');
  if (embedded) {
    const client = new DynamoDBClient({
      endpoint,
      region: config.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await ensureTables(client, loadDefinition(projectRoot()).tables, localTableNames(config));
    client.destroy();
  }
  const rt = buildRuntime(config, silentLog);
  setRuntime(rt);
  try {
    return await work(rt);
  } finally {
    setRuntime(undefined);
    await embedded?.stop();
  }
}
