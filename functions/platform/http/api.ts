import middy, { type MiddlewareObj } from '@middy/core';
import type {
  APIGatewayProxyResultV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import type { Log } from '../logger';
import { type AnyHttpEvent, type HttpRequest, type Principal, toRequest } from './event';
import {
  HttpError,
  forbidden,
  invalidJson,
  unauthorized,
  unsupportedMediaType,
  payloadTooLarge,
} from './errors';

export interface HttpResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HttpOptions {
  log: Log;
  corsOrigins: string[];
  /** Roles allowed to call; omitted means the route is public. */
  roles?: string[];
  /** Establishes the caller from the request (API key, session) when no authorizer did. */
  authenticate?: (request: HttpRequest) => Promise<Principal | undefined>;
  /** Sensitive routes: the session's MFA must be recent (step-up re-authentication). */
  stepUp?: boolean;
  /** Content types whose bodies are parsed as JSON; other bodies are refused with 415. */
  jsonTypes?: RegExp;
  /**
   * Routes that also take HTML form posts (the SAML POST binding), parsed into an object, named
   * as `METHOD /path` without a trailing slash, e.g. `POST /v1/auth/saml`. Every other route
   * refuses a form body with 415, so a third-party page cannot submit a form to it.
   */
  acceptForm?: readonly string[];
  /** Body size limit in bytes after base64 decoding. */
  maxBodyBytes?: number;
}

type Business = (request: HttpRequest, context: Context) => Promise<HttpResult>;
type Handler = (event: AnyHttpEvent, context: Context) => Promise<APIGatewayProxyResultV2>;

const JSON_TYPES = /^application\/([a-z.+-]+\+)?json$/;
/** API Gateway's payload limit is 10 MB; Lambda's synchronous invoke limit is 6 MB. */
const DEFAULT_MAX_BODY = 6 * 1024 * 1024;

/**
 * Every HTTP route goes through this one middleware, so its order lives in one place:
 * normalise the event, check the caller, parse the body; on the way out, shape the response
 * or the error, then add CORS headers to whichever it is.
 */
export function httpHandler(
  business: Business,
  options: HttpOptions | (() => HttpOptions),
): Handler {
  // Options may be computed on first use, so importing a handler builds no runtime.
  let resolved: HttpOptions | undefined;
  const get = () => (resolved ??= typeof options === 'function' ? options() : options);
  const wrapped = middy<HttpRequest, HttpResult>().use(pipeline(get)).handler(business);
  return wrapped as unknown as Handler;
}

type Internal = {
  origin?: string;
  requestId?: string;
};

function pipeline(
  get: () => HttpOptions,
): MiddlewareObj<unknown, unknown, Error, Context, Internal> {
  return {
    before: async (request) => {
      const options = get();
      const http = toRequest(request.event as AnyHttpEvent);
      request.internal.origin = http.headers.origin;
      request.internal.requestId = http.requestId;
      if (!http.principal && options.authenticate)
        http.principal = await options.authenticate(http);
      checkCaller(http, options);
      http.body = parseBody(http, options);
      request.event = http;
    },
    after: (request) => {
      const options = get();
      const result = request.response as HttpResult;
      request.response = finish(toResponse(result), request.internal.origin, options.corsOrigins);
    },
    onError: (request) => {
      const options = get();
      const response = errorResponse(request.error, request.internal.requestId ?? '', options.log);
      request.response = finish(response, request.internal.origin, options.corsOrigins);
    },
  };
}

function checkCaller(http: HttpRequest, options: HttpOptions): void {
  const { roles, stepUp } = options;
  if (!roles) return;
  const principal: Principal | undefined = http.principal;
  if (!principal) throw unauthorized('sign in, or send an API key in the x-api-key header');
  if (!principal.roles.some((role) => roles.includes(role))) {
    throw forbidden(`this route needs one of the roles: ${roles.join(', ')}`);
  }
  if (stepUp && principal.kind === 'user' && !principal.freshMfa) {
    throw new HttpError(
      401,
      'step_up_required',
      'confirm with a fresh MFA code at /v1/auth/step-up',
    );
  }
}

function parseBody(http: HttpRequest, options: HttpOptions): unknown {
  const raw = http.rawBody;
  // No body, or a zero-length one, is no body whatever the content type: browser clients label
  // every request application/json, bodiless DELETEs and POSTs included. A route that needs a
  // body says so itself, naming the field it misses.
  if (raw === undefined || raw.length === 0) return undefined;
  const type = (http.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const isJson = (options.jsonTypes ?? JSON_TYPES).test(type);

  if (Buffer.byteLength(raw) > (options.maxBodyBytes ?? DEFAULT_MAX_BODY)) {
    throw payloadTooLarge('the body is larger than this route accepts');
  }
  if (!isJson && type === 'application/x-www-form-urlencoded' && takesForm(http, options)) {
    return Object.fromEntries(new URLSearchParams(raw));
  }
  if (!isJson) {
    throw unsupportedMediaType('send the body as application/json');
  }
  const text = raw.trim();
  // Something was sent but it holds no document: blanks, or a JSON-encoded empty string.
  if (text === '' || text === '""') {
    throw invalidJson('the body holds no JSON document; send one, or leave the body empty');
  }
  try {
    return JSON.parse(raw);
  } catch {
    throw invalidJson('the body is not valid JSON');
  }
}

/** `METHOD /path` with the method uppercased and no trailing slash, as route tables key it. */
function routeKey(method: string, path: string): string {
  return `${method.trim().toUpperCase()} ${path.trim().replace(/\/$/, '')}`;
}

function takesForm(http: HttpRequest, options: HttpOptions): boolean {
  const routes = options.acceptForm;
  if (!routes || routes.length === 0) return false;
  const key = routeKey(http.method, http.path);
  return routes.some((route) => {
    const space = route.trim().indexOf(' ');
    return space > 0 && routeKey(route.slice(0, space), route.slice(space + 1)) === key;
  });
}

function toResponse(result: HttpResult): APIGatewayProxyStructuredResultV2 {
  // A page or other text sets its own content type and is sent as it is.
  const type = result.headers?.['content-type'];
  if (typeof result.body === 'string' && type && !type.includes('json')) {
    return { statusCode: result.status, headers: { ...result.headers }, body: result.body };
  }
  return {
    statusCode: result.status,
    headers: { 'content-type': 'application/json', ...result.headers },
    body: result.body === undefined ? '' : JSON.stringify(result.body),
  };
}

/**
 * The response for an error: below 500 the code, field and reason; 503 the code only; anything
 * else a generic 500 with the detail in the log. Always with the request id.
 */
export function errorResponse(
  error: unknown,
  requestId: string,
  log: Log,
): APIGatewayProxyStructuredResultV2 {
  if (error instanceof HttpError && error.status < 500) {
    const body = { error: error.code, field: error.field, reason: error.reason, requestId };
    return toResponse({ status: error.status, body, headers: error.headers });
  }
  // 503 says "try later" (a dependency is down) with a code and nothing else from the error.
  if (error instanceof HttpError && error.status === 503) {
    log.warn('dependency unavailable', { requestId, code: error.code });
    return toResponse({
      status: 503,
      body: { error: error.code, requestId },
      // Thirty seconds unless the error knows better (a busy process, for one, frees up sooner).
      headers: { 'retry-after': error.headers['retry-after'] ?? '30' },
    });
  }
  // The detail goes to the log only; the caller gets a generic body and the request id.
  log.error('request failed', { requestId, error: error as Error });
  return toResponse({ status: 500, body: { error: 'internal_error', requestId } });
}

/**
 * What every response gets on the way out: `cache-control: no-store` unless the handler chose
 * its own (bodies carry session tokens, TOTP seeds, recovery codes and enrolment links), then
 * the CORS headers for the caller's origin.
 */
export function finish(
  response: APIGatewayProxyStructuredResultV2,
  origin: unknown,
  corsOrigins: readonly string[],
): APIGatewayProxyStructuredResultV2 {
  const headers = { ...response.headers };
  if (!Object.keys(headers).some((name) => name.toLowerCase() === 'cache-control')) {
    headers['cache-control'] = 'no-store';
  }
  const cors = corsHeaders(origin, corsOrigins);
  const vary = Object.keys(headers).find((name) => name.toLowerCase() === 'vary');
  if (cors.vary && vary) {
    // Keep what the handler varies on, and add Origin to it.
    const values = String(headers[vary])
      .split(',')
      .map((value) => value.trim())
      .filter(Boolean);
    const covered = values.some((value) => value === '*' || value.toLowerCase() === 'origin');
    cors.vary = (covered ? values : [...values, cors.vary]).join(', ');
    delete headers[vary];
  }
  return { ...response, headers: { ...headers, ...cors } };
}

/**
 * CORS headers for a request from `origin`. An origin listed by name is reflected with
 * credentials allowed, so the console can send its session cookie. `*` lets any site read
 * responses but never with credentials: the answer is the literal `*`, and browsers then send
 * no cookies cross-site. No Origin header, or one that is not allowed, gets no CORS headers.
 */
export function corsHeaders(
  origin: unknown,
  corsOrigins: readonly string[],
): Record<string, string> {
  if (typeof origin !== 'string' || origin === '') return {};
  if (corsOrigins.includes(origin) && origin !== '*') {
    return {
      'access-control-allow-origin': origin,
      'access-control-expose-headers': 'Content-Range',
      'access-control-allow-credentials': 'true',
      vary: 'Origin',
    };
  }
  if (corsOrigins.includes('*')) {
    return {
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'Content-Range',
      vary: 'Origin',
    };
  }
  return {};
}
