import { identity, resetIdentity } from '../../functions/identity/context';
import { runtime, setRuntime } from '../../functions/platform/runtime';
import { resetAuditLog } from '../../functions/audit/context';
import { totpAt } from '../../functions/identity/totp';
import { HASH_CONCURRENCY, HASH_QUEUE_LIMIT } from '../../functions/identity/passwords';
import { AUTH_RATE_PER_MINUTE } from '../../functions/identity/auth';
import { call, startTestPlatform, type TestPlatform } from '../support/platform';
import { PASSWORD, TestClock, bearer, enrol, linkToken } from '../support/identity';

/**
 * What concurrent and out-of-order requests must not get past: the failure count that locks an
 * account, recovery codes that are good once, and enrolment links of locked accounts.
 */
describe('identity under concurrent and hostile use', () => {
  let t: TestPlatform;
  let base: string;
  let clock: TestClock;
  let officer: string;
  let officerSecret: string;
  const saved = { ...process.env };
  let employee = 100;

  /** A person with a password, an authenticator and recovery codes. */
  async function person(name: string) {
    const [first, last] = name.toLowerCase().split(' ');
    const email = `${first}.${last}@hospital.example`;
    const created = await call(base, 'POST', '/v1/users', {
      headers: bearer(officer),
      body: { email, name, employeeId: `E-${(employee += 1)}`, roles: ['nurse'] },
    });
    expect(created.status).toBe(201);
    const enrolled = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    return { id: created.json.id as string, email, ...enrolled };
  }

  const login = (email: string, password = PASSWORD) =>
    call(base, 'POST', '/v1/auth/login', { body: { email, password } });

  beforeAll(async () => {
    t = await startTestPlatform();
    base = t.platform.httpUrl;
    // Every request here comes from one address; its own limit is not what these tests probe.
    process.env.VIGIL_LOCKOUT_MAX_FAILURES_PER_IP = '1000';
    clock = new TestClock(Date.parse('2026-12-02T09:00:00Z'));
    setRuntime({ ...runtime(), clock });
    resetAuditLog();
    resetIdentity();
    const bootstrap = (await identity().users.bootstrapToken()) as string;
    const enrolled = await enrol(base, clock, bootstrap, {
      email: 'joseph.lister@hospital.example',
      name: 'Joseph Lister',
      employeeId: 'E-1',
    });
    officer = enrolled.token;
    officerSecret = enrolled.secret;
  });
  afterAll(async () => {
    process.env = saved;
    resetIdentity();
    await t.stop();
  });
  // Each test starts in a fresh rate-limit minute, with the officer's MFA fresh for changes.
  beforeEach(async () => {
    clock.advance(61_000);
    const up = await call(base, 'POST', '/v1/auth/step-up', {
      headers: bearer(officer),
      body: { code: totpAt(officerSecret, clock.now()) },
    });
    expect(up.status).toBe(200);
  });

  it('counts every one of many wrong passwords sent at once, and locks at five', async () => {
    const nurse = await person('Mary Breckinridge');

    const answers = await Promise.all(
      Array.from({ length: 12 }, () => login(nurse.email, 'wrong horse battery staple 42')),
    );
    const right = await login(nurse.email);

    expect(answers.every((answer) => answer.status === 401)).toBe(true);
    const stored = await identity().users.get(nurse.id);
    expect(stored).toMatchObject({ status: 'locked', failedLogins: 12 });
    expect(right.status).toBe(401);
  });

  it('stops a burst of guesses spread over many accounts at the address limit', async () => {
    const nurses = [
      await person('Clara Barton'),
      await person('Dorothea Dix'),
      await person('Isabel Hampton'),
      await person('Mary Mahoney'),
    ];
    // Six more failures than this address has made in its window so far.
    const { counters, lockout } = identity();
    const before = await counters.peek('ipfail#127.0.0.1', lockout.ipWindowMs);
    process.env.VIGIL_LOCKOUT_MAX_FAILURES_PER_IP = String(before.count + 6);
    resetIdentity();
    try {
      const answers = await Promise.all(
        nurses.flatMap((nurse) =>
          Array.from({ length: 4 }, () => login(nurse.email, 'wrong horse battery staple 42')),
        ),
      );
      const statuses = answers.map((answer) => answer.status).sort();

      expect(statuses.filter((status) => status === 401)).toHaveLength(6);
      expect(statuses.filter((status) => status === 429)).toHaveLength(10);
      const limited = answers.find((answer) => answer.status === 429);
      expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
      // No account reached its own limit: the guesses refused by the address were not counted.
      for (const nurse of nurses) {
        expect((await identity().users.get(nurse.id))?.status).toBe('active');
      }
    } finally {
      process.env.VIGIL_LOCKOUT_MAX_FAILURES_PER_IP = '1000';
      resetIdentity();
    }
  });

  it('turns a flood of sign-ins away with 503 and Retry-After, not a timeout', async () => {
    const capacity = HASH_CONCURRENCY + HASH_QUEUE_LIMIT;
    // Within the per-minute limit of the route, more than the process hashes or queues.
    const count = Math.min(AUTH_RATE_PER_MINUTE, capacity + 8);
    const answers = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        login(`nobody.${i}@hospital.example`, 'x'.repeat(12)),
      ),
    );

    const statuses = answers.map((answer) => answer.status);
    expect(statuses.every((status) => status === 401 || status === 503)).toBe(true);
    const busy = answers.filter((answer) => answer.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(busy[0]?.json).toMatchObject({ error: 'busy' });
    expect(busy[0]?.headers.get('retry-after')).toBe('2');
    expect((await call(base, 'GET', '/health')).status).toBe(200);
  });

  it('takes each recovery code once, even when different codes are used at the same moment', async () => {
    const nurse = await person('Lillian Wald');
    const codes = (nurse.body.recoveryCodes ?? []).slice(0, 4);
    const tickets = await Promise.all(codes.map(() => login(nurse.email)));

    const first = await Promise.all(
      codes.map((code, i) =>
        call(base, 'POST', '/v1/auth/mfa', {
          body: { ticket: tickets[i]?.json.ticket, recoveryCode: code },
        }),
      ),
    );
    const again = [];
    for (const code of codes) {
      const ticket = await login(nurse.email);
      again.push(
        await call(base, 'POST', '/v1/auth/mfa', {
          body: { ticket: ticket.json.ticket, recoveryCode: code },
        }),
      );
    }

    expect(first.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    expect(again.map((answer) => answer.status)).toEqual([401, 401, 401, 401]);
    expect((await identity().users.get(nurse.id))?.recoveryHashes).toHaveLength(6);
  });

  it('does not lock an account for right codes sent at the same moment', async () => {
    const nurse = await person('Mary Eliza Mahoney');
    const codes = (nurse.body.recoveryCodes ?? []).slice(0, 6);
    const tickets: Awaited<ReturnType<typeof login>>[] = [];
    for (const _ of codes) tickets.push(await login(nurse.email));

    const answers = await Promise.all(
      codes.map((code, i) =>
        call(base, 'POST', '/v1/auth/mfa', {
          body: { ticket: tickets[i]?.json.ticket, recoveryCode: code },
        }),
      ),
    );

    const signedIn = answers.filter((answer) => answer.status === 200).length;
    expect(signedIn).toBeGreaterThanOrEqual(5);
    const stored = await identity().users.get(nurse.id);
    expect(stored?.status).toBe('active');
    expect(stored?.recoveryHashes).toHaveLength(10 - signedIn);
  });

  it('does not open an authenticator seed copied onto another account, and audits it', async () => {
    const owner = await person('Clara Maass');
    const other = await person('Linda Richards');
    const sealed = (await identity().users.get(owner.id))?.totpSecret;
    await identity().users.update(other.id, { totpSecret: sealed });

    clock.advance(30_000);
    const ticket = await login(other.email);
    const res = await call(base, 'POST', '/v1/auth/mfa', {
      body: { ticket: ticket.json.ticket, code: totpAt(owner.secret, clock.now()) },
    });
    const filter = encodeURIComponent(JSON.stringify({ userId: other.id }));
    const audited = await call(base, 'GET', `/v1/audit-events?filter=${filter}`, {
      headers: bearer(officer),
    });

    expect(res.status).toBe(409);
    expect(res.json).toMatchObject({ error: 'mfa_unreadable' });
    expect(JSON.stringify(res.json)).not.toContain(owner.secret);
    expect(audited.status).toBe(200);
    expect(
      (audited.json as Array<{ userId: string; reason?: string }>).some(
        (event) => event.userId === other.id && event.reason === 'mfa_seed_unreadable',
      ),
    ).toBe(true);
  });

  it('lets no stranger lock out a person who has not enrolled yet', async () => {
    const created = await call(base, 'POST', '/v1/users', {
      headers: bearer(officer),
      body: {
        email: 'june.ortiz@hospital.example',
        name: 'June Ortiz',
        employeeId: 'E-901',
        roles: ['nurse'],
      },
    });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => login('june.ortiz@hospital.example', `guess ${i} x`)),
    );
    expect(answers.every((answer) => answer.status === 401)).toBe(true);
    expect((await identity().users.get(created.json.id))?.status).toBe('invited');
    const own = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token: linkToken(created.json.enrolmentUrl), password: PASSWORD },
    });
    expect(own.json.status).toBe('mfa_enrolment_required');
  });

  it('does not lock an account for the right code sent several times at once', async () => {
    const nurse = await person('Isabel Stewart');
    const tickets: Awaited<ReturnType<typeof login>>[] = [];
    for (let i = 0; i < 6; i += 1) tickets.push(await login(nurse.email));
    clock.advance(30_000);
    const code = totpAt(nurse.secret, clock.now());

    const answers = await Promise.all(
      tickets.map((ticket) =>
        call(base, 'POST', '/v1/auth/mfa', { body: { ticket: ticket.json.ticket, code } }),
      ),
    );

    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
    expect((await identity().users.get(nurse.id))?.status).toBe('active');
  });

  it('refuses enrolment through an unused link once the account is locked', async () => {
    const created = await call(base, 'POST', '/v1/users', {
      headers: bearer(officer),
      body: {
        email: 'gail.hart@hospital.example',
        name: 'Gail Hart',
        employeeId: 'E-900',
        roles: ['front_desk'],
      },
    });
    await identity().users.setStatus(created.json.id, 'locked', 'officer');

    const res = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token: linkToken(created.json.enrolmentUrl), password: PASSWORD },
    });

    expect(res.status).toBe(403);
    expect(res.json.error).toBe('account_not_active');
    expect((await identity().users.get(created.json.id))?.status).toBe('locked');
  });
});
