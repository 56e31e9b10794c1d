import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type {
  APIGatewayProxyResultV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { readConfig } from '../config';
import { corsHeaders, errorResponse, finish } from '../http/api';
import { badRequest, forbidden, notFound, payloadTooLarge, unauthorized } from '../http/errors';
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

/** API Gateway refuses payloads over 10 MB before any function runs. */
const GATEWAY_MAX_BODY = 10 * 1024 * 1024;

class BodyTooLarge extends Error {
  constructor() {
    super('payload too large');
    this.name = 'BodyTooLarge';
  }
}

async function readBody(req: http.IncomingMessage, limit = GATEWAY_MAX_BODY): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLarge();
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
      names.map((name, i) => [name, decodePathSegment(match[i + 1] ?? '')]),
    );
    return { route, params };
  }
  return undefined;
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest('path', 'the path has a malformed percent-encoded character');
  }
}

/** Writes a response in the API Gateway result shape to the socket. */
function write(res: http.ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const headers = Object.fromEntries(
    Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]),
  );
  res.writeHead(result.statusCode ?? 200, headers);
  res.end(
    result.isBase64Encoded && result.body
      ? Buffer.from(result.body, 'base64')
      : (result.body ?? ''),
  );
}

async function serveApi(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  routes: HttpRoute[],
  invoke: (name: string, event: unknown) => Promise<unknown>,
  corsOrigins: string[],
  log: Log,
): Promise<void> {
  // One id for the request, whether the gateway or the function answers it.
  const requestId = crypto.randomUUID();
  const origin = req.headers.origin;
  // Answers from the gateway itself have the same shape and headers as the pipeline's errors.
  const fail = (error: unknown) =>
    write(res, finish(errorResponse(error, requestId, log), origin, corsOrigins));
  try {
    if (req.method === 'OPTIONS') {
      // API Gateway answers preflight itself when CORS is configured on the HTTP API.
      send(res, 204, '', {
        ...corsHeaders(origin, corsOrigins),
        'access-control-allow-methods': 'GET,POST,PUT,DELETE,OPTIONS',
        'access-control-allow-headers': 'content-type,authorization,x-api-key',
        'access-control-max-age': '600',
      });
      return;
    }
    let url: URL;
    const target = req.url ?? '/';
    try {
      // Prefixed rather than resolved: `//v1/...` is a path here, not a host named v1.
      if (!target.startsWith('/')) throw new TypeError('not origin-form');
      url = new URL(`http://127.0.0.1${target}`);
    } catch {
      throw badRequest('path', 'the request target is not a valid path');
    }
    const method = req.method ?? 'GET';
    const found = matchRoute(routes, method, url.pathname);
    if (!found) throw notFound(`the route ${method} ${url.pathname}`);
    const body = await readBody(req);
    const event = httpApiEvent(req, url, body, found.route, found.params);
    event.requestContext.requestId = requestId;

    const authorizer = found.route.authorizer;
    if (authorizer?.kind === 'iam') {
      throw forbidden('IAM (SigV4) authorization is served on AWS; use x-api-key locally');
    }
    if (authorizer?.kind === 'lambda') {
      const verdict = (await invoke(authorizer.functionName, {
        ...event,
        type: 'REQUEST',
        routeArn: `arn:aws:execute-api:local:local:local/$default/${found.route.method}${found.route.path}`,
        identitySource: [event.headers['x-api-key'] ?? ''],
      })) as { isAuthorized?: boolean; context?: Record<string, unknown> };
      if (!event.headers['x-api-key'])
        throw unauthorized('send an API key in the x-api-key header');
      if (!verdict.isAuthorized) throw forbidden('the API key was not accepted');
      (event.requestContext as unknown as Record<string, unknown>).authorizer = {
        lambda: verdict.context ?? {},
      };
    }

    const result = (await invoke(found.route.functionName, event)) as APIGatewayProxyResultV2;
    if (typeof result === 'string' || result === undefined) return send(res, 200, result ?? '');
    write(res, result);
  } catch (error) {
    if (res.headersSent) {
      log.error('local gateway error after the response started', { requestId });
      res.destroy();
      return;
    }
    if (error instanceof BodyTooLarge) {
      // The rest of the body is not read: the connection closes after the answer.
      res.setHeader('connection', 'close');
      return fail(payloadTooLarge('the body is larger than the gateway accepts (10 MB)'));
    }
    fail(error);
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
