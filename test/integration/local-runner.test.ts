import http from 'node:http';
import net from 'node:net';
import { silentLog } from '../../functions/platform/logger';
import { call, startTestPlatform, type TestPlatform } from '../support/platform';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CONSOLE = 'https://console.example.test';

/** Sends a body of `size` bytes in chunks, without a content-length, as a streaming client does. */
function postChunked(base: string, route: string, size: number) {
  return new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
    const req = http.request(`${base}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          json: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        }),
      );
    });
    // The runner may close the connection while this side is still sending.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** Sends the request line as written (fetch would normalise it); HTTP/1.0 keeps the body plain. */
function rawRequest(base: string, target: string) {
  const { hostname, port } = new URL(base);
  return new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () =>
      socket.write(`GET ${target} HTTP/1.0\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`),
    );
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => (text += data));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      try {
        resolve({ status: Number(head.split(' ')[1]), json: JSON.parse(body) });
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

/** The answers the local runner gives itself, before or instead of a function. */
describe('the local HTTP runner', () => {
  let t: TestPlatform;
  let base: string;
  const errors = jest.spyOn(silentLog, 'error');

  beforeAll(async () => {
    t = await startTestPlatform();
    base = t.platform.httpUrl;
  });
  afterAll(async () => {
    errors.mockRestore();
    await t.stop();
  });
  beforeEach(() => errors.mockClear());

  it('answers a malformed percent-encoding in the path with a 400 naming the path', async () => {
    const res = await call(base, 'GET', '/v1/users/%E0%A4%A/sessions', {
      headers: { origin: CONSOLE },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('access-control-allow-origin')).toBe(CONSOLE);
    expect(res.json).toEqual({
      error: 'invalid_request',
      field: 'path',
      reason: expect.any(String),
      requestId: expect.stringMatching(UUID),
    });
    expect(res.text).not.toMatch(/ at |node_modules|URIError/);
    expect(errors).not.toHaveBeenCalled();
  });

  it('answers a request target that is not a valid URL with a 400 and keeps serving', async () => {
    const res = await rawRequest(base, 'http://[');
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: 'invalid_request', field: 'path' });
    expect(res.json.requestId).toMatch(UUID);
    expect((await call(base, 'GET', '/health')).status).toBe(200);
  });

  it('answers an 11 MB body in the shape the pipeline uses for a 6 MB one', async () => {
    const pad = (size: number) => JSON.stringify({ email: 'a@b.test', pad: 'x'.repeat(size) });
    const gateway = await call(base, 'POST', '/v1/auth/login', { body: pad(11 * 1024 * 1024) });
    const pipeline = await call(base, 'POST', '/v1/auth/login', { body: pad(6 * 1024 * 1024) });

    for (const res of [gateway, pipeline]) {
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.json).toEqual({
        error: 'payload_too_large',
        field: 'body',
        reason: expect.any(String),
        requestId: expect.stringMatching(UUID),
      });
    }
    expect(gateway.json.requestId).not.toBe(pipeline.json.requestId);
    expect(errors).not.toHaveBeenCalled();
  });

  it('answers an 11 MB body sent without a content-length with the same 413', async () => {
    const res = await postChunked(base, '/v1/auth/login', 11 * 1024 * 1024);
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({ error: 'payload_too_large', field: 'body' });
    expect(res.json.requestId).toMatch(UUID);
  });

  it('answers a route that does not exist with a 404 in the same shape', async () => {
    const res = await call(base, 'GET', '/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: 'not_found', requestId: expect.stringMatching(UUID) });
    expect(res.json).not.toHaveProperty('message');
  });

  it('reads a path that starts with two slashes as a path, not as a host', async () => {
    const res = await rawRequest(base, '//v1/auth/session');
    expect(res.status).toBe(404);
    expect(JSON.stringify(res.json)).toContain('GET //v1/auth/session');
  });

  it('answers preflight with the methods, headers and how long to keep them', async () => {
    const res = await call(base, 'OPTIONS', '/v1/auth/login', { headers: { origin: CONSOLE } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(CONSOLE);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toContain('DELETE');
    expect(res.headers.get('access-control-max-age')).toBe('600');
  });

  it('answers the authorizer refusals in the same shape', async () => {
    const event = [{ id: 'runner-1' }];
    const missing = await call(base, 'POST', '/v1/audit/events', { body: event });
    const wrong = await call(base, 'POST', '/v1/audit/events', { key: 'not-a-key', body: event });
    const iam = await call(base, 'POST', '/v1/iam/audit/events', { body: event });

    expect([missing.status, wrong.status, iam.status]).toEqual([401, 403, 403]);
    expect(missing.json).toMatchObject({ error: 'unauthorized' });
    expect(wrong.json).toMatchObject({ error: 'forbidden' });
    expect(iam.json).toMatchObject({ error: 'forbidden' });
    for (const res of [missing, wrong, iam]) {
      expect(res.json.requestId).toMatch(UUID);
      expect(res.json).not.toHaveProperty('message');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('still serves a well-formed request', async () => {
    const res = await call(base, 'GET', '/health');
    expect(res.status).toBe(200);
  });
});

describe('the local HTTP runner with VIGIL_CORS_ORIGINS=*', () => {
  let t: TestPlatform;
  const saved = process.env.VIGIL_CORS_ORIGINS;
  const SITE = 'https://anything.example.org';

  beforeAll(async () => {
    t = await startTestPlatform({ corsOrigins: '*' });
  });
  afterAll(async () => {
    await t.stop();
    if (saved === undefined) delete process.env.VIGIL_CORS_ORIGINS;
    else process.env.VIGIL_CORS_ORIGINS = saved;
  });

  it('answers any origin with * and never allows credentials', async () => {
    const base = t.platform.httpUrl;
    const preflight = await call(base, 'OPTIONS', '/v1/users', {
      headers: { origin: SITE, 'access-control-request-method': 'GET' },
    });
    // A handler reads its options once per process: this one was not called above, so it
    // takes this platform's origins.
    const fromHandler = await call(base, 'GET', '/v1/users', { headers: { origin: SITE } });
    const fromRunner = await call(base, 'GET', '/v1/nothing-here', { headers: { origin: SITE } });

    expect(fromHandler.status).toBe(401);
    expect(fromRunner.status).toBe(404);
    for (const res of [preflight, fromHandler, fromRunner]) {
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });
});
