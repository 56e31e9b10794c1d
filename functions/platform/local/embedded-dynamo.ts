import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The embedded DynamoDB-compatible server (dynalite): pure Node, bound to loopback only,
 * persisted under the data directory unless it runs in memory. It runs in a worker thread,
 * so the store's work uses the second core instead of competing with the handlers, and it
 * dies with the process (a killed CLI never leaves the data files locked).
 */
export interface EmbeddedDynamo {
  endpoint: string;
  stop(): Promise<void>;
}

export interface EmbeddedDynamoOptions {
  /** Directory for the LevelDB files; omit to keep everything in memory. */
  path?: string;
  port?: number;
  host?: string;
}

// The worker's source: plain CommonJS, so it needs no TypeScript loader.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const dynalite = require(workerData.dynalite);
// Table operations complete at once instead of simulating AWS's CREATING state.
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, path: workerData.path });
server.on('error', (error) => parentPort.postMessage({ error: error.message }));
server.listen(workerData.port, workerData.host, () => parentPort.postMessage({ port: server.address().port }));
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  if (server.closeAllConnections) server.closeAllConnections();
  server.close(() => parentPort.postMessage({ stopped: true }));
});
`;

export async function startEmbeddedDynamo(
  options: EmbeddedDynamoOptions = {},
): Promise<EmbeddedDynamo> {
  if (options.path) fs.mkdirSync(options.path, { recursive: true, mode: 0o700 });
  const host = options.host ?? '127.0.0.1';
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: {
      dynalite: require.resolve('dynalite'),
      path: options.path ? path.resolve(options.path) : undefined,
      port: options.port ?? 0,
      host,
    },
  });
  worker.unref();

  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (message: { port?: number; error?: string }) => {
      if (message.port) resolve(message.port);
      else reject(new Error(`embedded store did not start: ${message.error ?? 'unknown'}`));
    });
  });

  return {
    endpoint: `http://${host}:${port}`,
    stop: async () => {
      await new Promise<void>((resolve) => {
        worker.once('message', () => resolve());
        worker.postMessage('stop');
      });
      await worker.terminate();
    },
  };
}
