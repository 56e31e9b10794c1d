import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { readConfig } from '../config';
import { createLogger, type Log } from '../logger';
import { buildRuntime, setRuntime } from '../runtime';
import { type Definition, type HttpRoute, loadDefinition } from './definition';
import { startEmbeddedDynamo } from './embedded-dynamo';
import { httpApiEvent, lambdaContext, scheduledEvent } from './events';
import { ensureTables, localTableNames } from './tables';

type LambdaHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface PlatformOptions {
  root: string;
  dataDir: string;
  port?: number;
  invokePort?: number;
  /** Keep the store in memory (tests); otherwise it persists under the data directory. */
  inMemory?: boolean;
  /** Fire the schedules of serverless.yml; tests usually invoke them by hand instead. */
  schedules?: boolean;
  corsOrigins?: string;
  /** Use this DynamoDB-compatible server instead of starting the embedded one. */
  dynamoEndpoint?: string;
  /** Appended to every local table name (tests give each platform its own tables). */
  tableSuffix?: string;
  log?: Log;
}

export interface Platform {
  httpUrl: string;
  invokeUrl: string;
  dynamoEndpoint: string;
  definition: Definition;
  invoke(functionName: string, event: unknown): Promise<unknown>;
  stop(): Promise<void>;
}

/**
 * The whole platform in one process, on loopback: the embedded store, the HTTP API with the
 * routes and authorizers of serverless.yml, the Lambda Invoke API, and the schedules. The
 * handlers are the same modules that are deployed; only the adapters differ.
 */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const log = options.log ?? createLogger('vigil-local');
  const definition = loadDefinition(options.root);
  fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });

  const dynamo = options.dynamoEndpoint
    ? { endpoint: options.dynamoEndpoint, stop: async () => undefined }
    : await startEmbeddedDynamo({
        path: options.inMemory ? undefined : path.join(options.dataDir, 'dynamo'),
      });
  process.env.VIGIL_ADAPTERS = 'local';
  process.env.VIGIL_DYNAMODB_ENDPOINT = dynamo.endpoint;
  process.env.VIGIL_DATA_DIR = options.dataDir;
  if (options.corsOrigins !== undefined) process.env.VIGIL_CORS_ORIGINS = options.corsOrigins;
  if (options.tableSuffix !== undefined) {
    process.env.VIGIL_AUDIT_TABLE = `vigil-audit-${options.tableSuffix}`;
    process.env.VIGIL_IDENTITY_TABLE = `vigil-identity-${options.tableSuffix}`;
  }
  const config = readConfig();
  setRuntime(buildRuntime(config, log));

  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: config.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await ensureTables(client, definition.tables, localTableNames(config));
  client.destroy();

  const functions = new Map(definition.functions.map((f) => [f.name, f.handler]));
  const loaded = new Map<string, LambdaHandler>();
  const handlerOf = (name: string): LambdaHandler => {
    const cached = loaded.get(name);
    if (cached) return cached;
    const spec = functions.get(name);
    if (!spec) throw new Error(`no function named ${name} in serverless.yml`);
    const dot = spec.lastIndexOf('.');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- handlers load on demand
    const module = require(path.join(options.root, spec.slice(0, dot))) as Record<
      string,
      LambdaHandler
    >;
    const fn = module[spec.slice(dot + 1)];
    if (typeof fn !== 'function') throw new Error(`${spec} does not export a handler`);
    loaded.set(name, fn);
    return fn;
  };
  const invoke = (name: string, event: unknown) => handlerOf(name)(event, lambdaContext(name));

  const api = http.createServer((req, res) => {
    void serveApi(req, res, definition.routes, invoke, config.corsOrigins, log);
  });
  const invoker = http.createServer((req, res) => void serveInvoke(req, res, functions, invoke));
  const httpUrl = await listen(api, options.port ?? 3000);
  const invokeUrl = await listen(invoker, options.invokePort ?? 3002);

  const timers =
    (options.schedules ?? true)
      ? definition.schedules.map((s) =>
          setInterval(() => {
            invoke(s.functionName, scheduledEvent(s.functionName, new Date())).catch(
              (error: Error) =>
                log.error('scheduled invocation failed', { functionName: s.functionName, error }),
            );
          }, s.everyMs),
        )
      : [];

  return {
    httpUrl,
    invokeUrl,
    dynamoEndpoint: dynamo.endpoint,
    definition,
    invoke,
    stop: async () => {
      timers.forEach(clearInterval);
      await Promise.all([close(api), close(invoker)]);
      setRuntime(undefined);
      await dynamo.stop();
    },
  };
}

function listen(server: http.Server, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${bound}`);
    });
  });
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function readBody(req: http.IncomingMessage, limit = 10 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // API Gateway refuses payloads over 10 MB before any function runs.
    if (size > limit) throw Object.assign(new Error('payload too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Matches `/v1/patients/{id}/access-report` style templates; returns path parameters. */
export function matchRoute(routes: HttpRoute[], method: string, pathname: string) {
  for (const route of routes) {
    if (route.method !== method && route.method !== 'ANY') continue;
    const names: string[] = [];
    const pattern = route.path.replace(/\{([^}]+)\}/g, (_all, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    const match = new RegExp(`^${pattern}$`).exec(pathname);
    if (!match) continue;
    const params = Object.fromEntries(
      names.map((name, i) => [name, decodeURIComponent(match[i + 1] ?? '')]),
    );
    return { route, params };
  }
  return undefined;
}

async function serveApi(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  routes: HttpRoute[],
  invoke: (name: string, event: unknown) => Promise<unknown>,
  corsOrigins: string[],
  log: Log,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const origin = req.headers.origin;
  const cors: Record<string, string> =
    origin && (corsOrigins.includes(origin) || corsOrigins.includes('*'))
      ? {
          'access-control-allow-origin': origin,
          'access-control-allow-credentials': 'true',
          'access-control-expose-headers': 'Content-Range',
          vary: 'Origin',
        }
      : {};
  try {
    if (req.method === 'OPTIONS') {
      // API Gateway answers preflight itself when CORS is configured on the HTTP API.
      send(res, 204, '', {
        ...cors,
        'access-control-allow-methods': 'GET,POST,PUT,DELETE,OPTIONS',
        'access-control-allow-headers': 'content-type,authorization,x-api-key',
      });
      return;
    }
    const found = matchRoute(routes, req.method ?? 'GET', url.pathname);
    if (!found) return send(res, 404, { message: 'Not Found' }, cors);
    const body = await readBody(req);
    const event = httpApiEvent(req, url, body, found.route, found.params);

    const authorizer = found.route.authorizer;
    if (authorizer?.kind === 'iam') {
      return send(
        res,
        403,
        { message: 'IAM (SigV4) authorization is served on AWS; use x-api-key locally' },
        cors,
      );
    }
    if (authorizer?.kind === 'lambda') {
      const verdict = (await invoke(authorizer.functionName, {
        ...event,
        type: 'REQUEST',
        routeArn: `arn:aws:execute-api:local:local:local/$default/${found.route.method}${found.route.path}`,
        identitySource: [event.headers['x-api-key'] ?? ''],
      })) as { isAuthorized?: boolean; context?: Record<string, unknown> };
      if (!event.headers['x-api-key']) return send(res, 401, { message: 'Unauthorized' }, cors);
      if (!verdict.isAuthorized) return send(res, 403, { message: 'Forbidden' }, cors);
      (event.requestContext as unknown as Record<string, unknown>).authorizer = {
        lambda: verdict.context ?? {},
      };
    }

    const result = (await invoke(found.route.functionName, event)) as APIGatewayProxyResultV2;
    if (typeof result === 'string' || result === undefined) return send(res, 200, result ?? '');
    const headers = Object.fromEntries(
      Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]),
    );
    res.writeHead(result.statusCode ?? 200, headers);
    res.end(
      result.isBase64Encoded && result.body
        ? Buffer.from(result.body, 'base64')
        : (result.body ?? ''),
    );
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === 413) return send(res, 413, { message: 'Request Entity Too Large' }, cors);
    log.error('local gateway error', { error: error as Error });
    send(res, 500, { message: 'Internal Server Error' }, cors);
  }
}

async function serveInvoke(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  functions: Map<string, string>,
  invoke: (name: string, event: unknown) => Promise<unknown>,
): Promise<void> {
  const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(
    req.url?.split('?')[0] ?? '',
  );
  if (req.method !== 'POST' || !match) return send(res, 404, { message: 'Not Found' });
  const name =
    decodeURIComponent(match[1] ?? '')
      .split(':')
      .pop() ?? '';
  if (!functions.has(name)) {
    return send(
      res,
      404,
      { Type: 'User', message: `Function not found: ${name}` },
      {
        'x-amzn-errortype': 'ResourceNotFoundException',
      },
    );
  }
  let event: unknown;
  try {
    const body = await readBody(req, 6 * 1024 * 1024);
    event = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    return send(
      res,
      400,
      { Type: 'User', message: 'Could not parse request body into json' },
      {
        'x-amzn-errortype': 'InvalidRequestContentException',
      },
    );
  }
  try {
    const result = await invoke(name, event);
    send(res, 200, result === undefined ? 'null' : JSON.stringify(result));
  } catch (error) {
    // As Lambda reports a function error: status 200 and the error in the payload.
    const err = error as Error;
    send(
      res,
      200,
      { errorType: err.name ?? 'Error', errorMessage: err.message },
      {
        'x-amz-function-error': 'Unhandled',
      },
    );
  }
}
