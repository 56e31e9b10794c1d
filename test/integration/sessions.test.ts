import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  startEmbeddedDynamo,
  type EmbeddedDynamo,
} from '../../functions/platform/local/embedded-dynamo';
import type { Clock, Item } from '../../functions/platform/ports';
import { DynamoStore } from '../../functions/platform/store/dynamo';
import { keys, sessionsOfUser, type IdentityAuditEvent } from '../../functions/identity/model';
import {
  DEFAULT_SESSION_POLICY,
  type Session,
  SessionLimitError,
  SessionNotActiveError,
  type SessionPolicy,
  SessionService,
  sessionPolicyFrom,
} from '../../functions/identity/sessions';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const minutes = (m: number, s = 0) => m * MINUTE + s * SECOND;
const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

/** Sign-in happens at t=0, a fixed instant; tests move the clock by hand. */
const T0 = Date.parse('2026-03-02T13:00:00.000Z');

class TestClock implements Clock {
  private at = T0;
  now = () => new Date(this.at);
  /** Moves to `ms` after sign-in. */
  set(ms: number) {
    this.at = T0 + ms;
  }
}

const WORKSTATION = { ip: '10.20.0.7', userAgent: 'Mozilla/5.0 (Windows NT 10.0) Firefox/140.0' };
const ELSEWHERE = { ip: '198.51.100.23', userAgent: WORKSTATION.userAgent };
const OTHER_BROWSER = { ip: WORKSTATION.ip, userAgent: 'Mozilla/5.0 (Macintosh) Safari/18.0' };

/** The identity table's keys and indexes, as serverless.yml declares them. */
async function createIdentityTable(client: DynamoDBClient, name: string): Promise<void> {
  const attributes = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk'];
  const index = (n: 1 | 2) => ({
    IndexName: `gsi${n}`,
    KeySchema: [
      { AttributeName: `gsi${n}pk`, KeyType: 'HASH' as const },
      { AttributeName: `gsi${n}sk`, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: attributes.map((a) => ({ AttributeName: a, AttributeType: 'S' })),
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [index(1), index(2)],
    }),
  );
  // A new table takes writes only once ACTIVE, a moment later even on the embedded store.
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await sleep(10);
  }
}

describe('server-side sessions', () => {
  let dynamo: EmbeddedDynamo | undefined;
  let client: DynamoDBClient;
  let store: DynamoStore;
  let table: string;
  let clock: TestClock;
  let events: IdentityAuditEvent[];
  let sessions: SessionService;

  const service = (policy: Partial<SessionPolicy> = {}) =>
    new SessionService(store, table, clock, { ...DEFAULT_SESSION_POLICY, ...policy }, async (e) => {
      events.push(e);
    });

  const signIn = (userId = 'u-okafor', ctx: Partial<typeof WORKSTATION> = {}) =>
    sessions.create(
      { id: userId, roles: ['physician'] },
      { ...WORKSTATION, ...ctx, mfa: true, method: 'password' },
    );

  /** The session a request is served with; fails the test when the request is refused. */
  const served = async (token: string, ctx = WORKSTATION): Promise<Session> => {
    const result = await sessions.check(token, ctx);
    if (!result.ok) throw new Error(`expected the request to be served, got ${result.reason}`);
    return result.session;
  };

  const audited = (event: string, sessionId: string) =>
    events.filter((e) => e.event === event && e.resourceId === sessionId);

  beforeAll(async () => {
    // CI runs the suite once more against DynamoDB Local, as the platform tests do.
    let endpoint = process.env.VIGIL_TEST_DYNAMODB_ENDPOINT;
    if (!endpoint) {
      dynamo = await startEmbeddedDynamo();
      endpoint = dynamo.endpoint;
    }
    client = new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    store = new DynamoStore(DynamoDBDocumentClient.from(client));
  });

  afterAll(async () => {
    client.destroy();
    await dynamo?.stop();
  });

  beforeEach(async () => {
    table = `vigil-identity-sessions-${crypto.randomUUID()}`;
    await createIdentityTable(client, table);
    clock = new TestClock();
    events = [];
    sessions = service();
  });

  describe('idle timeout and absolute lifetime (B20)', () => {
    /** Sign-in at t=0, then calls at 5, 14, 28 and 42 minutes, then silence. */
    async function activeUntil42() {
      const { token, session } = await signIn();
      for (const t of [5, 14, 28, 42]) {
        clock.set(minutes(t));
        await served(token);
      }
      return { token, session };
    }

    it('resets the idle timer on every call, so a probe at 56:59 is served', async () => {
      const { token } = await activeUntil42();
      clock.set(minutes(56, 59));

      const probe = await served(token);

      expect(probe.lastSeenAt).toBe(new Date(T0 + minutes(56, 59)).toISOString());
    });

    it('still serves a probe at exactly 15 minutes after the last call', async () => {
      const { token } = await activeUntil42();
      clock.set(minutes(57));

      expect(await sessions.check(token, WORKSTATION)).toMatchObject({ ok: true });
    });

    it('ends the session as expired_idle at 57:01 and audits the expiry once', async () => {
      const { token, session } = await activeUntil42();
      clock.set(minutes(57, 1));

      const probe = await sessions.check(token, WORKSTATION);
      clock.set(minutes(58));
      const later = await sessions.check(token, WORKSTATION);

      expect(probe).toEqual({ ok: false, reason: 'expired_idle' });
      expect(later).toEqual({ ok: false, reason: 'expired_idle' });
      expect(audited('session_expired', session.id)).toEqual([
        expect.objectContaining({
          actorId: 'u-okafor',
          resourceType: 'Session',
          resourceId: session.id,
          reason: 'expired_idle',
        }),
      ]);
    });

    it('ends a session calling every 10 minutes on its first call after 12 hours', async () => {
      const { token, session } = await signIn();
      const outcomes: Array<[minute: number, outcome: string]> = [];

      for (let t = 10; t <= 13 * 60; t += 10) {
        clock.set(minutes(t));
        const result = await sessions.check(token, WORKSTATION);
        outcomes.push([t, result.ok ? 'served' : result.reason]);
      }

      const refusedAt = outcomes.filter(([, outcome]) => outcome !== 'served');
      expect(refusedAt[0]).toEqual([12 * 60 + 10, 'expired_absolute']);
      expect(refusedAt.every(([, outcome]) => outcome === 'expired_absolute')).toBe(true);
      expect(refusedAt).toHaveLength(6);
      expect(audited('session_expired', session.id)).toHaveLength(1);
    });

    it('names the absolute lifetime when the idle limit has also passed', async () => {
      const { token, session } = await signIn();
      for (let t = 10; t <= 11 * 60 + 50; t += 10) {
        clock.set(minutes(t));
        await served(token);
      }
      clock.set(12 * HOUR + minutes(10));

      expect(await sessions.check(token, WORKSTATION)).toEqual({
        ok: false,
        reason: 'expired_absolute',
      });
      expect(audited('session_expired', session.id)).toEqual([
        expect.objectContaining({ reason: 'expired_absolute' }),
      ]);
    });

    it('keeps an idle tab valid while another tab of the same session is active', async () => {
      const { token } = await signIn();
      for (const t of [10, 20, 30]) {
        clock.set(minutes(t));
        await served(token); // tab A
      }
      clock.set(minutes(40));

      const tabB = await sessions.check(token, WORKSTATION);

      expect(tabB).toMatchObject({ ok: true });
    });

    it('records one expiry when two requests race past the idle limit', async () => {
      for (let round = 0; round < 20; round += 1) {
        clock.set(0);
        const { token, session } = await signIn(`u-race-${round}`);
        clock.set(minutes(15, 1));

        const results = await Promise.all([
          sessions.check(token, WORKSTATION),
          sessions.check(token, WORKSTATION),
        ]);

        expect(results).toEqual([
          { ok: false, reason: 'expired_idle' },
          { ok: false, reason: 'expired_idle' },
        ]);
        expect(audited('session_expired', session.id)).toHaveLength(1);
      }
    });
  });

  describe('recording activity', () => {
    const lastSeenOf = async (token: string) => {
      const item = await store.get(table, keys.session(sha256(token)));
      return item?.lastSeenAt;
    };

    it('serves requests within the touch span from one read, without a write', async () => {
      const { token } = await signIn();
      clock.set(4 * SECOND);

      const probe = await served(token);

      expect(probe.lastSeenAt).toBe(new Date(T0).toISOString());
      expect(await lastSeenOf(token)).toBe(new Date(T0).toISOString());
    });

    it('writes the activity of the first request after the touch span', async () => {
      const { token } = await signIn();
      clock.set(5 * SECOND);

      await served(token);

      expect(await lastSeenOf(token)).toBe(new Date(T0 + 5 * SECOND).toISOString());
    });

    it('ends a session early, never late: within the span the idle clock is not reset', async () => {
      const { token } = await signIn();
      clock.set(4 * SECOND);
      await served(token);
      clock.set(minutes(15, 1));

      expect(await sessions.check(token, WORKSTATION)).toEqual({
        ok: false,
        reason: 'expired_idle',
      });
    });

    it('writes on every request when the span is 0', async () => {
      sessions = service({ touchMs: 0 });
      const { token } = await signIn();
      clock.set(1);

      await served(token);

      expect(await lastSeenOf(token)).toBe(new Date(T0 + 1).toISOString());
    });

    it('serves every one of many requests racing to record activity', async () => {
      const { token, session } = await signIn();
      clock.set(minutes(1));

      const results = await Promise.all(
        Array.from({ length: 8 }, () => sessions.check(token, WORKSTATION)),
      );

      expect(results.every((r) => r.ok)).toBe(true);
      expect(await lastSeenOf(token)).toBe(new Date(T0 + minutes(1)).toISOString());
      expect(events.filter((e) => e.resourceId === session.id)).toHaveLength(1);
    });
  });

  describe('ending sessions', () => {
    it('ends a session at logout at once and records the logout once', async () => {
      const { token, session } = await signIn();
      await served(token);

      await sessions.end(token, 'logout', 'u-okafor');
      await sessions.end(token, 'logout', 'u-okafor');

      expect(await sessions.check(token, WORKSTATION)).toEqual({ ok: false, reason: 'logout' });
      expect(audited('logout', session.id)).toEqual([
        expect.objectContaining({ actorId: 'u-okafor', resourceType: 'Session' }),
      ]);
    });

    it('revokes one session by id and leaves the others in use', async () => {
      const first = await signIn();
      clock.set(minutes(1));
      const second = await signIn();

      const revoked = await sessions.revokeById('u-okafor', first.session.id, 'u-officer');

      expect(revoked).toBe(true);
      expect(await sessions.check(first.token, WORKSTATION)).toEqual({
        ok: false,
        reason: 'revoked',
      });
      expect((await served(second.token)).id).toBe(second.session.id);
      expect(audited('session_revoked', first.session.id)).toEqual([
        expect.objectContaining({ actorId: 'u-officer', reason: 'revoked' }),
      ]);
    });

    it("does not revoke a session through another user's id", async () => {
      const { token, session } = await signIn();

      const revoked = await sessions.revokeById('u-someone-else', session.id, 'u-officer');

      expect(revoked).toBe(false);
      expect(await sessions.check(token, WORKSTATION)).toMatchObject({ ok: true });
    });

    it('revokes every live session of a user', async () => {
      const first = await signIn();
      clock.set(minutes(1));
      const second = await signIn();
      await sessions.end(second.token, 'logout', 'u-okafor');

      const ended = await sessions.revokeAll('u-okafor', 'u-officer');

      expect(ended).toBe(1);
      expect(await sessions.check(first.token, WORKSTATION)).toEqual({
        ok: false,
        reason: 'revoked',
      });
      expect(await sessions.check(second.token, WORKSTATION)).toEqual({
        ok: false,
        reason: 'logout',
      });
    });

    it('records a session past its limit as expired, not as logged out', async () => {
      const { token, session } = await signIn();
      clock.set(minutes(20));

      await sessions.end(token, 'logout', 'u-okafor');

      expect(await sessions.check(token, WORKSTATION)).toEqual({
        ok: false,
        reason: 'expired_idle',
      });
      expect(audited('session_expired', session.id)).toHaveLength(1);
      expect(audited('logout', session.id)).toHaveLength(0);
    });

    it('answers missing without a token and unknown for a token it never issued', async () => {
      const forged = crypto.randomBytes(32).toString('base64url');

      expect(await sessions.check(undefined, WORKSTATION)).toEqual({
        ok: false,
        reason: 'missing',
      });
      expect(await sessions.check(forged, WORKSTATION)).toEqual({ ok: false, reason: 'unknown' });
    });
  });

  describe('concurrent sessions', () => {
    it('ends the oldest session when a sign-in goes over the limit', async () => {
      const signedIn: Array<{ token: string; session: Session }> = [];
      for (let i = 0; i < 4; i += 1) {
        clock.set(minutes(i));
        signedIn.push(await signIn());
      }
      const [oldest, ...newer] = signedIn;

      expect(await sessions.check(oldest?.token, WORKSTATION)).toEqual({
        ok: false,
        reason: 'limit',
      });
      for (const { token } of newer) await served(token);
      expect(audited('session_limit', oldest?.session.id ?? '')).toHaveLength(1);
    });

    it('refuses a sign-in over the limit under the refuse policy', async () => {
      sessions = service({ onLimit: 'refuse' });
      const signedIn: Array<{ token: string; session: Session }> = [];
      for (let i = 0; i < 3; i += 1) {
        clock.set(minutes(i));
        signedIn.push(await signIn());
      }
      clock.set(minutes(3));

      await expect(signIn()).rejects.toBeInstanceOf(SessionLimitError);

      for (const { token } of signedIn) await served(token);
      expect(await sessions.listForUser('u-okafor')).toHaveLength(3);
      expect(events.filter((e) => e.event === 'session_refused')).toHaveLength(1);
    });

    it('does not count expired sessions toward the limit', async () => {
      sessions = service({ onLimit: 'refuse' });
      const signedIn: Array<{ token: string; session: Session }> = [];
      for (let i = 0; i < 3; i += 1) signedIn.push(await signIn());
      clock.set(minutes(16));

      const fresh = await signIn();

      expect((await served(fresh.token)).id).toBe(fresh.session.id);
      for (const { session } of signedIn) {
        expect(audited('session_expired', session.id)).toHaveLength(1);
      }
    });

    it('keeps the limit when sign-ins race under end-oldest', async () => {
      for (let i = 0; i < 3; i += 1) {
        clock.set(minutes(i));
        await signIn();
      }
      clock.set(minutes(3));

      const racers = await Promise.all([signIn(), signIn()]);

      const live = (await sessions.listForUser('u-okafor')).filter((s) => !s.endedAt);
      expect(live).toHaveLength(3);
      for (const { token } of racers) await served(token);
    });

    it('never lets sign-ins racing under refuse go over the limit', async () => {
      sessions = service({ onLimit: 'refuse' });
      for (let round = 0; round < 10; round += 1) {
        const userId = `u-refuse-${round}`;
        await signIn(userId);
        await signIn(userId);

        await Promise.allSettled([signIn(userId), signIn(userId)]);

        const live = (await sessions.listForUser(userId)).filter((s) => !s.endedAt);
        expect(live.length).toBeLessThanOrEqual(3);
      }
    });
  });

  describe('binding to the client', () => {
    it('ends the session when it is used from another address under the end policy', async () => {
      const { token, session } = await signIn();

      const replayed = await sessions.check(token, ELSEWHERE);
      const original = await sessions.check(token, WORKSTATION);

      expect(replayed).toEqual({ ok: false, reason: 'binding' });
      expect(original).toEqual({ ok: false, reason: 'binding' });
      expect(audited('session_binding', session.id)).toEqual([
        expect.objectContaining({ ipAddress: ELSEWHERE.ip, reason: 'binding' }),
      ]);
    });

    it('asks for a step-up from another address under the step-up policy', async () => {
      sessions = service({ onBindingMismatch: 'step-up' });
      const { token } = await signIn();

      const moved = await sessions.check(token, ELSEWHERE);
      const original = await sessions.check(token, WORKSTATION);
      await sessions.markMfa(token, ELSEWHERE);
      const afterStepUp = await sessions.check(token, ELSEWHERE);

      expect(moved).toEqual({ ok: false, reason: 'step_up_required' });
      expect(original).toMatchObject({ ok: true });
      expect(afterStepUp).toMatchObject({ ok: true, session: { ip: ELSEWHERE.ip } });
      expect(events.filter((e) => e.event === 'session_binding')).toHaveLength(0);
    });

    it('binds to the browser under the device policy', async () => {
      sessions = service({ binding: 'device' });
      const { token } = await signIn();

      expect(await sessions.check(token, ELSEWHERE)).toMatchObject({ ok: true });
      expect(await sessions.check(token, OTHER_BROWSER)).toEqual({
        ok: false,
        reason: 'binding',
      });
    });
  });

  describe('step-up freshness', () => {
    it('counts the MFA of sign-in as fresh at 4:59 and stale at 5:01', async () => {
      const { token } = await signIn();

      clock.set(minutes(4, 59));
      const early = await served(token);
      const freshEarly = sessions.hasFreshMfa(early);
      clock.set(minutes(5, 1));
      const late = await served(token);
      const freshLate = sessions.hasFreshMfa(late);

      expect(freshEarly).toBe(true);
      expect(freshLate).toBe(false);
    });

    it('makes MFA fresh again after a step-up', async () => {
      const { token } = await signIn();
      clock.set(minutes(10));

      await sessions.markMfa(token);
      clock.set(minutes(14, 59));

      expect(sessions.hasFreshMfa(await served(token))).toBe(true);
    });

    it('refuses a step-up on an ended session', async () => {
      const { token } = await signIn();
      await sessions.end(token, 'logout', 'u-okafor');

      await expect(sessions.markMfa(token)).rejects.toBeInstanceOf(SessionNotActiveError);
    });

    it('has no fresh MFA for a session created without one', async () => {
      const { session } = await sessions.create(
        { id: 'u-okafor', roles: ['physician'] },
        { ...WORKSTATION, mfa: false, method: 'oidc' },
      );

      expect(sessions.hasFreshMfa(session)).toBe(false);
    });
  });

  describe('what is stored', () => {
    const stored = async (): Promise<Item[]> => {
      const items: Item[] = [];
      for await (const item of store.scan(table)) items.push(item);
      return items;
    };

    it('keeps only the SHA-256 of the token, a registry entry for the user and an absolute TTL', async () => {
      const { token, session } = await signIn();
      const hash = sha256(token);

      const items = await stored();

      expect(Buffer.from(token, 'base64url')).toHaveLength(32);
      expect(JSON.stringify(items)).not.toContain(token);
      expect(items).toHaveLength(2);
      expect(items).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            ...keys.session(hash),
            expiresAt: (T0 + 12 * HOUR) / 1000,
          }),
          // The user's registry entry points at the session by its hashed key, nothing more.
          expect.objectContaining({
            pk: sessionsOfUser('u-okafor'),
            sk: `${session.createdAt}#${session.id}`,
            sessionPk: keys.session(hash).pk,
          }),
        ]),
      );
      const sessionItem = items.find((item) => item.pk === keys.session(hash).pk);
      expect(Object.keys(sessionItem ?? {}).some((name) => name.startsWith('gsi'))).toBe(false);
    });

    it('lists sessions newest first without token or hash', async () => {
      const first = await signIn();
      clock.set(minutes(1));
      const second = await signIn();
      const hashes = [first.token, second.token].map((t) => sha256(t));

      const listed = await sessions.listForUser('u-okafor');

      expect(listed.map((s) => s.id)).toEqual([second.session.id, first.session.id]);
      const text = JSON.stringify(listed);
      for (const secret of [first.token, second.token, ...hashes]) {
        expect(text).not.toContain(secret);
      }
    });

    it('audits every creation without the token', async () => {
      const { token, session } = await signIn();

      expect(audited('session_created', session.id)).toEqual([
        expect.objectContaining({ actorId: 'u-okafor', action: 'create', ipAddress: '10.20.0.7' }),
      ]);
      expect(JSON.stringify(events)).not.toContain(token);
    });
  });
});

describe('session policy from the environment', () => {
  it('uses 15 idle minutes, 12 hours, 3 sessions, 5 step-up minutes and 5 touch seconds by default', () => {
    expect(sessionPolicyFrom({})).toEqual({
      idleMs: 15 * MINUTE,
      absoluteMs: 12 * HOUR,
      maxConcurrent: 3,
      onLimit: 'end-oldest',
      binding: 'ip',
      onBindingMismatch: 'end',
      stepUpMs: 5 * MINUTE,
      touchMs: 5 * SECOND,
    });
  });

  it('reads every setting', () => {
    const policy = sessionPolicyFrom({
      VIGIL_SESSION_IDLE_MINUTES: '10',
      VIGIL_SESSION_ABSOLUTE_HOURS: '8',
      VIGIL_SESSION_MAX_CONCURRENT: '1',
      VIGIL_SESSION_ON_LIMIT: 'refuse',
      VIGIL_SESSION_BINDING: 'device',
      VIGIL_SESSION_ON_BINDING_MISMATCH: 'step-up',
      VIGIL_STEP_UP_MINUTES: '2',
      VIGIL_SESSION_TOUCH_SECONDS: '0',
    });

    expect(policy).toEqual({
      idleMs: 10 * MINUTE,
      absoluteMs: 8 * HOUR,
      maxConcurrent: 1,
      onLimit: 'refuse',
      binding: 'device',
      onBindingMismatch: 'step-up',
      stepUpMs: 2 * MINUTE,
      touchMs: 0,
    });
  });

  it.each([
    ['VIGIL_SESSION_IDLE_MINUTES', '0'],
    ['VIGIL_SESSION_IDLE_MINUTES', 'fifteen'],
    ['VIGIL_SESSION_ABSOLUTE_HOURS', '1.5'],
    ['VIGIL_SESSION_MAX_CONCURRENT', '-1'],
    ['VIGIL_SESSION_ON_LIMIT', 'drop'],
    ['VIGIL_SESSION_BINDING', 'cookie'],
    ['VIGIL_SESSION_ON_BINDING_MISMATCH', 'ignore'],
    ['VIGIL_STEP_UP_MINUTES', '0'],
    ['VIGIL_SESSION_TOUCH_SECONDS', '-1'],
    ['VIGIL_SESSION_TOUCH_SECONDS', '900'],
  ])('rejects %s=%s by naming the variable', (name, value) => {
    expect(() => sessionPolicyFrom({ [name]: value })).toThrow(name);
  });

  it('rejects an idle timeout longer than the absolute lifetime', () => {
    expect(() =>
      sessionPolicyFrom({ VIGIL_SESSION_IDLE_MINUTES: '90', VIGIL_SESSION_ABSOLUTE_HOURS: '1' }),
    ).toThrow('VIGIL_SESSION_IDLE_MINUTES');
  });
});
