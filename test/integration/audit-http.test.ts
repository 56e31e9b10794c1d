import fs from 'node:fs';
import path from 'node:path';
import { ROOT, call, nativeEvent, startTestPlatform, type TestPlatform } from '../support/platform';

const fixture = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/fhir-auditevent', name), 'utf8'));

describe('audit ingest over HTTP', () => {
  let t: TestPlatform;
  let base: string;

  beforeAll(async () => {
    t = await startTestPlatform();
    base = t.platform.httpUrl;
  });
  afterAll(() => t.stop());

  it('reports health with the version and every adapter', async () => {
    const res = await call(base, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      status: 'ok',
      mode: 'local',
      adapters: { store: 'ok', keys: 'ok' },
    });
    expect(res.json.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('refuses ingest without an API key and with an unknown one', async () => {
    expect((await call(base, 'POST', '/v1/audit/events', { body: [nativeEvent()] })).status).toBe(
      401,
    );
    const forged = await call(base, 'POST', '/v1/audit/events', {
      key: 'vgl_forged',
      body: [nativeEvent()],
    });
    expect(forged.status).toBe(403);
  });

  it('accepts native events and answers 202 with a result per event', async () => {
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [nativeEvent({ id: 'evt-1' }), nativeEvent({ id: 'evt-2', action: 'export' })],
    });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ accepted: 2, duplicate: 0, rejected: 0, failed: 0 });
    expect(res.json.results.map((r: { index: number }) => r.index)).toEqual([0, 1]);
  });

  it('never stores a redelivered event twice', async () => {
    const body = [nativeEvent({ id: 'evt-redelivered' })];
    const first = await call(base, 'POST', '/v1/audit/events', { key: t.producerKey, body });
    const again = await call(base, 'POST', '/v1/audit/events', { key: t.producerKey, body });
    expect(first.json.accepted).toBe(1);
    expect(again.json).toMatchObject({ accepted: 0, duplicate: 1 });
    expect(again.json.results[0].id).toBe(first.json.results[0].id);
  });

  it('reports a repeat inside one batch as a duplicate, and the same id with other content as rejected', async () => {
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [
        nativeEvent({ id: 'dup-in-batch' }),
        nativeEvent({ id: 'dup-in-batch' }),
        nativeEvent({ id: 'dup-in-batch', action: 'delete' }),
      ],
    });
    expect(res.json.results.map((r: { status: string }) => r.status)).toEqual([
      'accepted',
      'duplicate',
      'rejected',
    ]);
    expect(res.json.results[2]).toMatchObject({ field: 'id' });
  });

  it('keeps a stored event as it is when its id comes again with other content', async () => {
    const body = [nativeEvent({ id: 'evt-rewritten', userId: 'dr-chen' })];
    const first = await call(base, 'POST', '/v1/audit/events', { key: t.producerKey, body });
    const other = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [nativeEvent({ id: 'evt-rewritten', userId: 'someone-else', action: 'delete' })],
    });
    expect(first.json.accepted).toBe(1);
    expect(other.json.results[0]).toMatchObject({ status: 'rejected', field: 'id' });
    const stored = await call(base, 'GET', `/v1/audit-events/${first.json.results[0].id}`, {
      key: t.readerKey,
    });
    expect(stored.json).toMatchObject({ userId: 'dr-chen', action: 'view' });
  });

  it('refuses a date that does not exist', async () => {
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [nativeEvent({ id: 'feb-30', timestamp: '2026-02-30T09:15:00Z' })],
    });
    expect(res.json.results[0]).toMatchObject({ status: 'rejected', field: 'timestamp' });
  });

  it('refuses a time more than a day ahead or before 1970, which no report would show', async () => {
    const ahead = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [
        nativeEvent({ id: 'far-ahead', timestamp: '2126-06-01T00:00:00Z' }),
        nativeEvent({ id: 'two-days-ahead', timestamp: ahead }),
        nativeEvent({ id: 'too-old', timestamp: '1969-12-31T23:59:59Z' }),
        nativeEvent({ id: 'in-time', timestamp: new Date().toISOString() }),
      ],
    });
    expect(res.json.results.map((r: { status: string }) => r.status)).toEqual([
      'rejected',
      'rejected',
      'rejected',
      'accepted',
    ]);
    expect(res.json.results[0]).toMatchObject({ field: 'timestamp' });
  });

  it('refuses identifiers that are blank or hold invisible characters', async () => {
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [
        nativeEvent({ id: 'blank-user', userId: '   ' }),
        nativeEvent({ id: 'zero-width', userId: 'dr\u200b-chen' }),
        nativeEvent({ id: 'rtl', patientId: 'p-1\u202e00' }),
      ],
    });
    expect(res.json.results).toEqual([
      expect.objectContaining({ status: 'rejected', field: 'userId' }),
      expect.objectContaining({ status: 'rejected', field: 'userId' }),
      expect.objectContaining({ status: 'rejected', field: 'patientId' }),
    ]);
  });

  it('quarantines a body nested too deep to serialise, without a 500', async () => {
    const deep = `${'['.repeat(20000)}${']'.repeat(20000)}`;
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: `[${deep}]`,
    });
    expect(res.status).toBe(202);
    expect(res.json.results[0].status).toBe('rejected');
  });

  it('dedupes events without an id by their canonical content', async () => {
    const event = nativeEvent({ resourceId: 'obs-no-id' });
    const reordered = Object.fromEntries(Object.entries(event).reverse());
    const first = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [event],
    });
    const again = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [reordered],
    });
    expect(first.json.accepted).toBe(1);
    expect(again.json.duplicate).toBe(1);
  });

  it('rejects a bad event naming its field, quarantines it, and keeps the rest of the batch', async () => {
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [
        nativeEvent({ id: 'good-1' }),
        nativeEvent({ id: 'bad-1', userRole: undefined, usrRole: 'x' }),
      ],
    });
    expect(res.status).toBe(202);
    expect(res.json.results[0].status).toBe('accepted');
    expect(res.json.results[1]).toMatchObject({
      status: 'rejected',
      field: 'usrRole',
      reason: 'is not a known key',
    });

    const quarantine = await call(base, 'GET', '/v1/audit/quarantine', { key: t.readerKey });
    expect(quarantine.status).toBe(200);
    expect(quarantine.json).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'usrRole', source: 'http' })]),
    );
  });

  it('accepts a FHIR R4 AuditEvent and a Bundle', async () => {
    const single = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: fixture('ihe-balp-read-server-patient.json'),
      headers: { 'content-type': 'application/fhir+json' },
    });
    expect(single.status).toBe(202);
    expect(single.json.accepted + single.json.duplicate).toBe(1);

    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [fixture('r4-spec-rest-vread.json'), fixture('r4-spec-search.json')].map(
        (resource) => ({ resource }),
      ),
    };
    const res = await call(base, 'POST', '/v1/audit/events', { key: t.producerKey, body: bundle });
    expect(res.status).toBe(202);
    expect(res.json.accepted).toBe(2);
  });

  it('answers bad JSON with 400 invalid_json and keeps CORS headers on the error', async () => {
    const res = await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: '{"userId":',
      headers: { origin: 'https://console.example.test' },
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_json');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://console.example.test');
  });

  it('lists events in simple-rest style with an inclusive Content-Range', async () => {
    for (let i = 0; i < 12; i += 1) {
      await call(base, 'POST', '/v1/audit/events', {
        key: t.producerKey,
        body: [
          nativeEvent({
            id: `list-${i}`,
            patientId: 'p-list',
            timestamp: `2026-10-0${(i % 9) + 1}T10:00:00Z`,
          }),
        ],
      });
    }
    const filter = encodeURIComponent(JSON.stringify({ patientId: 'p-list' }));
    const res = await call(
      base,
      'GET',
      `/v1/audit-events?filter=${filter}&range=[10,19]&sort=["timestamp","ASC"]`,
      {
        key: t.readerKey,
        headers: { origin: 'https://console.example.test' },
      },
    );
    expect(res.status).toBe(200);
    expect(res.json).toHaveLength(2);
    expect(res.headers.get('content-range')).toBe('audit-events 10-11/12');
    expect(res.headers.get('access-control-expose-headers')).toBe('Content-Range');

    const ids = [res.json[0].id, res.json[1].id];
    const many = await call(
      base,
      'GET',
      `/v1/audit-events?filter=${encodeURIComponent(JSON.stringify({ id: ids }))}`,
      {
        key: t.readerKey,
      },
    );
    expect(many.json.map((r: { id: string }) => r.id).sort()).toEqual([...ids].sort());

    const one = await call(base, 'GET', `/v1/audit-events/${ids[0]}`, { key: t.readerKey });
    expect(one.json).toMatchObject({
      id: ids[0],
      patientId: 'p-list',
      producer: 'test-producer',
      source: 'http',
    });
  });

  it('refuses a malformed list query with 400, never 500', async () => {
    for (const query of [
      'filter={"id":',
      'sort=["nope","ASC"]',
      'range=[5,1]',
      'filter={"patientId":{"toString":1}}',
      'filter={"from":"1800-01-01T00:00:00Z","to":"9999-12-31T23:59:59Z"}',
      'filter={"from":"-271821-04-20T00:00:00Z"}',
    ]) {
      const res = await call(base, 'GET', `/v1/audit-events?${query}`, { key: t.readerKey });
      expect(res.status).toBe(400);
      expect(res.json.field).toBeDefined();
    }
  });

  it('keeps query routes for reader keys only', async () => {
    const res = await call(base, 'GET', '/v1/audit-events', { key: t.producerKey });
    expect(res.status).toBe(403);
  });

  it('reports who accessed a patient record, when and why', async () => {
    await call(base, 'POST', '/v1/audit/events', {
      key: t.producerKey,
      body: [
        nativeEvent({
          id: 'acc-1',
          patientId: 'p-report',
          userId: 'nurse-joy',
          purposeOfUse: 'TREAT',
        }),
      ],
    });
    const res = await call(base, 'GET', '/v1/patients/p-report/access-report', {
      key: t.readerKey,
    });
    expect(res.status).toBe(200);
    expect(res.json.total).toBe(1);
    expect(res.json.accesses[0]).toMatchObject({
      who: { userId: 'nurse-joy' },
      why: { purposeOfUse: 'TREAT' },
      what: { action: 'view' },
    });
  });

  it('audits its own API calls into the same log, and the whole log verifies', async () => {
    const res = await call(base, 'GET', '/v1/audit/verify', { key: t.readerKey });
    expect(res.status).toBe(200);
    expect(res.json.ok).toBe(true);
    const api = res.json.streams.find((s: { stream: string }) => s.stream === 'vigil-api');
    expect(api.entries).toBeGreaterThan(0);
    expect(
      res.json.streams.find((s: { stream: string }) => s.stream === 'http-test-producer').entries,
    ).toBeGreaterThan(10);
  });
});

describe('health when an adapter fails', () => {
  it('answers 503 naming the adapter that cannot be used', async () => {
    const t = await startTestPlatform();
    try {
      fs.rmSync(path.join(t.dataDir, 'logs'), { recursive: true, force: true });
      const res = await call(t.platform.httpUrl, 'GET', '/health');
      expect(res.status).toBe(503);
      expect(res.json).toMatchObject({
        status: 'degraded',
        adapters: { logSink: 'error', store: 'ok' },
      });
    } finally {
      await t.stop();
    }
  });
});
