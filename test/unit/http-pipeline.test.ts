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

  describe('a JSON content type with no body, as browser clients send it', () => {
    const JSON_TYPE = { 'content-type': 'application/json' };

    it('lets a DELETE through with no body (v2 and v1)', async () => {
      const fromV2 = await invoke(echo, v2('DELETE', JSON_TYPE));
      const fromV1 = await invoke(echo, v1('DELETE', { 'Content-Type': 'application/json' }));
      expect([fromV2.statusCode, fromV1.statusCode]).toEqual([200, 200]);
      expect(seen.map((r) => r.body)).toEqual([undefined, undefined]);
    });

    it('lets a POST through with an empty string body (v2 and v1)', async () => {
      const fromV2 = await invoke(echo, v2('POST', JSON_TYPE, ''));
      const fromV1 = await invoke(echo, v1('POST', { 'Content-Type': 'application/json' }, ''));
      expect([fromV2.statusCode, fromV1.statusCode]).toEqual([201, 201]);
      expect(seen.map((r) => r.body)).toEqual([undefined, undefined]);
    });

    it('lets a POST through with no body and a charset parameter', async () => {
      const res = await invoke(
        echo,
        v2('POST', { 'content-type': 'application/json; charset=utf-8' }),
      );
      expect(res.statusCode).toBe(201);
      expect(seen.map((r) => r.body)).toEqual([undefined]);
    });

    it('treats a base64-encoded empty body as no body', async () => {
      const res = await invoke(echo, v2('POST', JSON_TYPE, '', { isBase64Encoded: true }));
      expect(res.statusCode).toBe(201);
      expect(seen.map((r) => r.body)).toEqual([undefined]);
    });

    it.each([
      ['whitespace only', ' \n\t '],
      ['malformed JSON', '{"a":'],
      ['a bare word', 'undefined'],
    ])('still answers 400 invalid_json naming body to %s', async (_label, body) => {
      for (const event of [
        v2('POST', JSON_TYPE, body),
        v1('DELETE', { 'Content-Type': 'application/json' }, body),
        v2('POST', JSON_TYPE, Buffer.from(body).toString('base64'), { isBase64Encoded: true }),
      ]) {
        const res = await invoke(echo, event);
        expect(res.statusCode).toBe(400);
        expect(JSON.parse(res.body as string)).toMatchObject({
          error: 'invalid_json',
          field: 'body',
        });
      }
      expect(seen).toHaveLength(0);
    });

    it('still refuses a body that is present in another type with 415', async () => {
      const res = await invoke(echo, v2('DELETE', { 'content-type': 'text/plain' }, ' '));
      expect(res.statusCode).toBe(415);
    });
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

/** A v2 event for any method and path, as API Gateway delivers it. */
function at(method: string, path: string, headers: Record<string, string>, body?: string) {
  return v2(method, headers, body, {
    rawPath: path,
    routeKey: `${method} ${path}`,
    requestContext: {
      http: { method, path, sourceIp: '127.0.0.1' },
      requestId: 'req-3',
    } as APIGatewayProxyEventV2['requestContext'],
  });
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('form bodies', () => {
  const sso = httpHandler(async (request) => ({ status: 200, body: { got: request.body } }), {
    log,
    corsOrigins: [],
    acceptForm: ['POST /v1/auth/saml'],
  });

  it.each([['/v1/auth/saml'], ['/v1/auth/saml/']])(
    'parses a form post to a listed route (%s)',
    async (path) => {
      const res = await invoke(sso, at('POST', path, FORM, 'SAMLResponse=PHNhbWw%2B&RelayState=x'));
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body as string)).toEqual({
        got: { SAMLResponse: 'PHNhbWw+', RelayState: 'x' },
      });
    },
  );

  it.each([
    ['POST', '/v1/auth/login'],
    ['POST', '/v1/auth/mfa'],
    ['PUT', '/v1/auth/saml'],
  ])('refuses a form post to %s %s of the same handler with 415', async (method, path) => {
    const res = await invoke(sso, at(method, path, FORM, 'email=a%40b.test&password=secret'));
    expect(res.statusCode).toBe(415);
    expect(JSON.parse(res.body as string)).toEqual({
      error: 'unsupported_media_type',
      field: 'content-type',
      reason: 'send the body as application/json',
      requestId: 'req-3',
    });
  });

  it('refuses a form post when the handler lists no form routes', async () => {
    const res = await invoke(echo, v2('POST', FORM, 'a=1'));
    expect(res.statusCode).toBe(415);
    expect(JSON.parse(res.body as string)).toMatchObject({ error: 'unsupported_media_type' });
  });

  it('still takes JSON on a listed route', async () => {
    const res = await invoke(
      sso,
      at('POST', '/v1/auth/saml', { 'content-type': 'application/json' }, '{"SAMLResponse":"x"}'),
    );
    expect(JSON.parse(res.body as string)).toEqual({ got: { SAMLResponse: 'x' } });
  });
});

describe('caching', () => {
  it('marks a success no-store', async () => {
    const res = await invoke(echo, v2('GET', {}));
    expect(res.statusCode).toBe(200);
    expect(res.headers?.['cache-control']).toBe('no-store');
  });

  it.each([
    ['a 400', badRequest('name', 'is required'), 400],
    ['a 401', new HttpError(401, 'unauthorized', 'sign in'), 401],
    ['a 503', new HttpError(503, 'store_unavailable', 'down'), 503],
    ['an unexpected error', new Error('boom'), 500],
  ])('marks %s no-store', async (_label, error, status) => {
    const failing = httpHandler(async () => Promise.reject(error), { log, corsOrigins: [] });
    const res = await invoke(failing, v2('GET', {}));
    expect(res.statusCode).toBe(status);
    expect(res.headers?.['cache-control']).toBe('no-store');
  });

  it('marks a refusal from the pipeline itself no-store', async () => {
    const res = await invoke(echo, v2('POST', { 'content-type': 'text/plain' }, 'x'));
    expect(res.statusCode).toBe(415);
    expect(res.headers?.['cache-control']).toBe('no-store');
  });

  it("keeps the handler's own cache-control, whatever its casing", async () => {
    const cached = httpHandler(
      async () => ({ status: 200, body: {}, headers: { 'Cache-Control': 'public, max-age=300' } }),
      { log, corsOrigins: [] },
    );
    const res = await invoke(cached, v2('GET', {}));
    expect(res.headers).toMatchObject({ 'Cache-Control': 'public, max-age=300' });
    expect(res.headers).not.toHaveProperty('cache-control');
  });
});

describe('CORS', () => {
  const ok = async () => ({ status: 200, body: {} });
  const SITE = 'https://anything.example.org';

  it('answers a wildcard with * and without credentials', async () => {
    const open = httpHandler(ok, { log, corsOrigins: ['*'] });
    const res = await invoke(open, v2('GET', { origin: SITE }));
    expect(res.headers?.['access-control-allow-origin']).toBe('*');
    expect(res.headers).not.toHaveProperty('access-control-allow-credentials');
  });

  it('also answers an error under a wildcard with * and without credentials', async () => {
    const open = httpHandler(async () => Promise.reject(badRequest('x', 'bad')), {
      log,
      corsOrigins: ['*'],
    });
    const res = await invoke(open, v2('GET', { origin: SITE }));
    expect(res.statusCode).toBe(400);
    expect(res.headers?.['access-control-allow-origin']).toBe('*');
    expect(res.headers).not.toHaveProperty('access-control-allow-credentials');
  });

  it('reflects a listed origin with credentials, also when a wildcard is listed too', async () => {
    for (const corsOrigins of [[ORIGIN], ['*', ORIGIN]]) {
      const handler = httpHandler(ok, { log, corsOrigins });
      const res = await invoke(handler, v2('GET', { origin: ORIGIN }));
      expect(res.headers).toMatchObject({
        'access-control-allow-origin': ORIGIN,
        'access-control-allow-credentials': 'true',
        'access-control-expose-headers': 'Content-Range',
        vary: 'Origin',
      });
    }
  });

  it('gives an origin that is not listed no CORS headers', async () => {
    const res = await invoke(echo, v2('GET', { origin: SITE }));
    expect(res.headers).not.toHaveProperty('access-control-allow-origin');
    expect(res.headers).not.toHaveProperty('access-control-allow-credentials');
  });

  it('adds Origin to a vary header the handler set', async () => {
    const varied = httpHandler(
      async () => ({ status: 200, body: {}, headers: { Vary: 'Accept-Encoding' } }),
      { log, corsOrigins: [ORIGIN] },
    );
    const res = await invoke(varied, v2('GET', { origin: ORIGIN }));
    expect(res.headers?.vary).toBe('Accept-Encoding, Origin');
    expect(res.headers).not.toHaveProperty('Vary');
  });
});
