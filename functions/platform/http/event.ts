import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';

/** An API Gateway proxy event of either payload version, as it arrives. */
export type AnyHttpEvent = APIGatewayProxyEventV2 | APIGatewayProxyEvent;

/** The one shape every Vigil HTTP handler reads, whatever payload version or header casing. */
export interface HttpRequest {
  method: string;
  path: string;
  /** Header names lowercased, as HTTP APIs deliver them; REST APIs keep the client's casing. */
  headers: Record<string, string>;
  query: Record<string, string>;
  pathParameters: Record<string, string>;
  rawBody?: string;
  body?: unknown;
  requestId: string;
  sourceIp?: string;
  userAgent?: string;
  principal?: Principal;
}

/** Who is calling, as established by a verifier: never read from client-supplied fields. */
export interface Principal {
  id: string;
  kind: 'producer' | 'iam' | 'user';
  roles: string[];
  /** Users only: the server-side session and whether its MFA is fresh enough for step-up. */
  sessionId?: string;
  freshMfa?: boolean;
}

const isV2 = (event: AnyHttpEvent): event is APIGatewayProxyEventV2 =>
  (event as APIGatewayProxyEventV2).version === '2.0';

export function normalizeHeaders(headers: Record<string, string | undefined> | null | undefined) {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined) out[name.toLowerCase()] = value;
  }
  return out;
}

export function toRequest(event: AnyHttpEvent): HttpRequest {
  const headers = normalizeHeaders(event.headers);
  const rawBody =
    event.body === null || event.body === undefined
      ? undefined
      : event.isBase64Encoded
        ? Buffer.from(event.body, 'base64').toString('utf8')
        : event.body;
  const common = {
    headers,
    rawBody,
    query: compact(event.queryStringParameters),
    pathParameters: compact(event.pathParameters),
    userAgent: headers['user-agent'],
  };
  if (isV2(event)) {
    return {
      ...common,
      method: event.requestContext.http.method.toUpperCase(),
      path: event.requestContext.http.path ?? event.rawPath,
      requestId: event.requestContext.requestId,
      sourceIp: event.requestContext.http.sourceIp,
      principal: principalOf(event.requestContext as unknown as Record<string, unknown>),
    };
  }
  return {
    ...common,
    method: event.httpMethod.toUpperCase(),
    path: event.path,
    requestId: event.requestContext.requestId,
    sourceIp: event.requestContext.identity?.sourceIp,
    principal: principalOf(event.requestContext as unknown as Record<string, unknown>),
  };
}

function compact(values: Record<string, string | undefined> | null | undefined) {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(values ?? {})) {
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * Only two places are trusted, both filled by API Gateway after verification: the context
 * our Lambda authorizer returned (`authorizer.lambda`) and a SigV4 caller (`authorizer.iam`).
 * Claims anywhere else, such as `authorizer.claims`, were checked by nobody and are ignored.
 */
function principalOf(context: Record<string, unknown>): Principal | undefined {
  const authorizer = context.authorizer as Record<string, Record<string, unknown>> | undefined;
  const lambda = authorizer?.lambda;
  if (lambda && typeof lambda.producer === 'string') {
    return { id: lambda.producer, kind: 'producer', roles: [String(lambda.role ?? 'producer')] };
  }
  const iam = authorizer?.iam;
  if (iam && typeof iam.userArn === 'string') {
    return { id: iam.userArn, kind: 'iam', roles: ['producer'] };
  }
  return undefined;
}
