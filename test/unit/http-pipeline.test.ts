import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { httpHandler } from '../../functions/platform/http/api';
import { HttpError, badRequest } from '../../functions/platform/http/errors';
import type { HttpRequest } from '../../functions/platform/http/event';

const ORIGIN = 'https://console.example.test';
const context = {} as Context;
const logged: unknown[] = [];
const log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (...args: unknown[]) => void logged.push(args),
};

function v2(
  method: string,
  headers: Record<string, string>,
  body?: string,
  extra: Partial<APIGatewayProxyEventV2> = {},
) {
  return {
    version: '2.0',
    routeKey: `${method} /v1/things`,
    rawPath: '/v1/things',
    rawQueryString: '',
    headers,
    body,
    isBase64Encoded: false,
    requestContext: {
      http: { method, path: '/v1/things', sourceIp: '127.0.0.1' },
      requestId: 'req-1',
    },
    ...extra,
  } as unknown as APIGatewayProxyEventV2;
}

function v1(method: string, headers: Record<string, string>, body?: string) {
  return {
    httpMethod: method,
    path: '/v1/things',
    headers,
    body: body ?? null,
    isBase64Encoded: false,
    requestContext: { requestId: 'req-2', identity: { sourceIp: '127.0.0.1' } },
  } as unknown as APIGatewayProxyEvent;
}

const seen: HttpRequest[] = [];
const echo = httpHandler(
  async (request) => {
    seen.push(request);
    return {
      status: request.method === 'POST' ? 201 : 200,
      body: { ok: true, body: request.body },
    };
  },
  { log, corsOrigins: [ORIGIN] },
);

const invoke = async (handler: typeof echo, event: APIGatewayProxyEventV2 | APIGatewayProxyEvent) =>
  (await handler(event, context)) as APIGatewayProxyStructuredResultV2;

afterEach(() => {
  seen.length = 0;
  logged.length = 0;
});

describe('the HTTP pipeline', () => {
  it('lets a GET through with no body and no content type', async () => {
    expect((await invoke(echo, v2('GET', {}))).statusCode).toBe(200);
  });

  it('lets a DELETE through with text/plain and no body, as react-admin sends it', async () => {
    expect((await invoke(echo, v2('DELETE', { 'content-type': 'text/plain' }))).statusCode).toBe(
      200,
    );
  });

  it.each([['""'], ['{"patientRef":"P-001","reason":']])(
    'answers 400 invalid_json to the body %s',
    async (body) => {
      const res = await invoke(echo, v2('POST', { 'content-type': 'application/json' }, body));
      expect(res.statusCode).toBe(400);
      expect(JSON.parse(res.body as string)).toMatchObject({
        error: 'invalid_json',
        field: 'body',
      });
      expect(res.body).not.toMatch(/at |node_modules/);
    },
  );

  it('answers 415 to a JSON body sent as text/plain', async () => {
    expect(
      (await invoke(echo, v2('POST', { 'content-type': 'text/plain' }, '{"a":1}'))).statusCode,
    ).toBe(415);
  });

  it('accepts a charset parameter and a base64-encoded body', async () => {
    const body = '{"a":1}';
    const plain = await invoke(
      echo,
      v2('POST', { 'content-type': 'application/json; charset=utf-8' }, body),
    );
    const encoded = await invoke(
      echo,
      v2('POST', { 'content-type': 'application/json' }, Buffer.from(body).toString('base64'), {
        isBase64Encoded: true,
      }),
    );
    expect([plain.statusCode, encoded.statusCode]).toEqual([201, 201]);
    expect(seen.map((r) => r.body)).toEqual([{ a: 1 }, { a: 1 }]);
  });

  it('reads the body and token the same from a v2 event and a v1 event with other casing', async () => {
    await invoke(
      echo,
      v2(
        'POST',
        { 'content-type': 'application/json', authorization: 'Bearer t' },
        '{"roleId":"r-2"}',
      ),
    );
    await invoke(
      echo,
      v1(
        'POST',
        { 'Content-type': 'application/json', AUTHORIZATION: 'Bearer t' },
        '{"roleId":"r-2"}',
      ),
    );
    expect(seen.map((r) => [r.body, r.headers.authorization])).toEqual([
      [{ roleId: 'r-2' }, 'Bearer t'],
      [{ roleId: 'r-2' }, 'Bearer t'],
    ]);
  });

  it('trusts no claims that no verifier placed, such as authorizer.claims', async () => {
    const guarded = httpHandler(async () => ({ status: 200 }), {
      log,
      corsOrigins: [],
      roles: ['reader'],
    });
    const event = v2('GET', {});
    (event.requestContext as unknown as Record<string, unknown>).authorizer = {
      claims: { sub: 'u-123', role: 'reader' },
    };
    expect((await invoke(guarded, event)).statusCode).toBe(401);
  });

  it('keeps CORS headers on a 400 that names the missing field', async () => {
    const failing = httpHandler(async () => Promise.reject(badRequest('name', 'is required')), {
      log,
      corsOrigins: [ORIGIN],
    });
    const res = await invoke(
      failing,
      v2('POST', { origin: ORIGIN, 'content-type': 'application/json' }, '{}'),
    );
    expect(res.statusCode).toBe(400);
    expect(res.headers?.['access-control-allow-origin']).toBe(ORIGIN);
    expect(JSON.parse(res.body as string)).toMatchObject({ field: 'name', reason: 'is required' });
  });

  it.each([
    [
      'a TypeError from the SDK',
      new TypeError("Cannot read properties of undefined (reading 'S')"),
    ],
    [
      'a 500 HttpError with a secret in it',
      new HttpError(500, 'db', 'db password rejected for user admin'),
    ],
    [
      'a missing table',
      Object.assign(
        new Error(
          'Requested resource not found: Table: vigil-prod-audit arn:aws:dynamodb:us-east-1:1:table/x',
        ),
        { name: 'ResourceNotFoundException' },
      ),
    ],
  ])(
    'turns %s into a generic 500 with CORS and the detail only in the log',
    async (_label, error) => {
      const failing = httpHandler(async () => Promise.reject(error), {
        log,
        corsOrigins: [ORIGIN],
      });
      const res = await invoke(failing, v2('GET', { origin: ORIGIN }));
      expect(res.statusCode).toBe(500);
      expect(res.headers?.['content-type']).toBe('application/json');
      expect(res.headers?.['access-control-allow-origin']).toBe(ORIGIN);
      expect(JSON.parse(res.body as string)).toEqual({
        error: 'internal_error',
        requestId: 'req-1',
      });
      expect(res.body).not.toMatch(/at |node_modules|\/var\/task|vigil-prod-audit|arn:|password/);
      expect(logged).toHaveLength(1);
    },
  );
});
