import type { AddressInfo } from 'node:net';
import fs from 'node:fs';

/**
 * The embedded DynamoDB-compatible server (dynalite): pure Node, bound to loopback only,
 * persisted under the data directory unless it runs in memory.
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

// Table operations complete at once instead of simulating AWS's CREATING state.
const INSTANT = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 };

export async function startEmbeddedDynamo(
  options: EmbeddedDynamoOptions = {},
): Promise<EmbeddedDynamo> {
  // dynalite is CommonJS without types; loaded lazily so AWS bundles never include it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- untyped CommonJS module
  const dynalite = require('dynalite') as (opts: object) => import('node:http').Server;
  if (options.path) fs.mkdirSync(options.path, { recursive: true, mode: 0o700 });
  const server = dynalite({ ...INSTANT, path: options.path });
  const host = options.host ?? '127.0.0.1';

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://${host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
