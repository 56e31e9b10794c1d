import { identity, resetIdentity } from '../../functions/identity/context';
import { totpAt } from '../../functions/identity/totp';
import { runtime, setRuntime } from '../../functions/platform/runtime';
import { resetAuditLog } from '../../functions/audit/context';
import { ConditionFailedError, type Store } from '../../functions/platform/ports';
import { keys } from '../../functions/identity/model';
import { Users } from '../../functions/identity/users';
import { call, startTestPlatform, type TestPlatform } from '../support/platform';
import { PASSWORD, TestClock, bearer, enrol, linkToken } from '../support/identity';

describe('identity over HTTP', () => {
  let t: TestPlatform;
  let base: string;
  let clock: TestClock;
  let officer: { token: string; secret: string };

  async function signIn(email: string, secret: string) {
    clock.advance(30_000); // a fresh TOTP step: a code is good once
    const first = await call(base, 'POST', '/v1/auth/login', {
      body: { email, password: PASSWORD },
    });
    expect(first.json.status).toBe('mfa_required');
    const second = await call(base, 'POST', '/v1/auth/mfa', {
      body: { ticket: first.json.ticket, code: totpAt(secret, clock.now()) },
    });
    expect(second.status).toBe(200);
    return second.json.token as string;
  }

  /** The officer creates an account, as the console would. */
  const createUser = (body: Record<string, unknown>) =>
    call(base, 'POST', '/v1/users', { headers: bearer(officer.token), body });
  /** The officer changes an account, as the console's edit form would. */
  const updateUser = (id: string, body: Record<string, unknown>) =>
    call(base, 'PUT', `/v1/users/${id}`, { headers: bearer(officer.token), body });

  /** A fresh MFA proof for the officer: changes to users need one from the last five minutes. */
  async function stepUp() {
    clock.advance(30_000);
    const up = await call(base, 'POST', '/v1/auth/step-up', {
      headers: bearer(officer.token),
      body: { code: totpAt(officer.secret, clock.now()) },
    });
    expect(up.status).toBe(200);
  }

  /** The item that reserves an employee id or NPI for one account. */
  const claimOf = (field: 'employeeId' | 'npi', value: string) =>
    runtime().store.get(runtime().config.identityTable, {
      pk: `PERSON#${field}#${value}`,
      sk: 'P',
    });

  beforeAll(async () => {
    t = await startTestPlatform();
    base = t.platform.httpUrl;
    clock = new TestClock(Date.parse('2026-12-01T15:00:00Z'));
    setRuntime({ ...runtime(), clock });
    resetAuditLog();
    resetIdentity();
    const bootstrap = (await identity().users.bootstrapToken()) as string;
    // A person made from the machine before any officer holds E-0: the first officer's try
    // with that id is refused, and the link stays good for the next try.
    await identity().users.create({
      email: 'ward.sister@hospital.example',
      name: 'Agnes Jones',
      employeeId: 'E-0',
      roles: ['nurse'],
    });
    const taken = await call(base, 'POST', '/v1/auth/enrol', {
      body: {
        token: bootstrap,
        password: PASSWORD,
        email: 'grace.hopper@hospital.example',
        name: 'Grace Hopper',
        employeeId: 'E-0',
      },
    });
    expect(taken.status).toBe(409);
    expect(taken.json.field).toBe('employeeId');
    const enrolled = await enrol(base, clock, bootstrap, {
      email: 'grace.hopper@hospital.example',
      name: 'Grace Hopper',
      employeeId: 'E-1',
    });
    officer = { token: enrolled.token, secret: enrolled.secret };
    expect(enrolled.cookie).toMatch(
      /^vigil_session=[^;]+; HttpOnly; Secure; SameSite=Strict; Path=\//,
    );
    expect(enrolled.body.recoveryCodes).toHaveLength(10);
  });
  afterAll(() => t.stop());

  it('enrols the first security officer once, from the link printed at first start', async () => {
    const session = await call(base, 'GET', '/v1/auth/session', { headers: bearer(officer.token) });
    expect(session.status).toBe(200);
    expect(session.json.user).toMatchObject({
      email: 'grace.hopper@hospital.example',
      roles: ['security_officer'],
      status: 'active',
    });
    expect(JSON.stringify(session.json)).not.toMatch(
      /passwordHash|totpSecret|recoveryHashes|failedLogins|mfaResetAt/,
    );
    expect(await identity().users.bootstrapToken()).toBeUndefined();
  });

  it('refuses shared and generic accounts, naming the field', async () => {
    const res = await createUser({
      email: 'admin@hospital.example',
      name: 'Admin Account',
      employeeId: 'E-9',
      roles: ['nurse'],
    });
    expect(res.status).toBe(400);
    expect(res.json.field).toBe('email');
  });

  it('refuses fields of the wrong type instead of turning them into text', async () => {
    const person = {
      email: 'lise.meitner@hospital.example',
      name: 'Lise Meitner',
      employeeId: 'E-60',
      roles: ['nurse'],
    };
    for (const [field, value] of [
      ['name', { first: 'Lise' }],
      ['email', ['lise.meitner@hospital.example']],
      ['employeeId', true],
      ['roles', [1]],
    ] as const) {
      const res = await createUser({ ...person, [field]: value });
      expect(res.status).toBe(400);
      expect(res.json.field).toBe(field);
    }
  });

  it('refuses a second spelling of one mailbox or one employee id', async () => {
    const first = await createUser({
      email: 'nina.nurse@hospital.example',
      name: 'Nina Nurse',
      employeeId: 'E-61',
      roles: ['nurse'],
    });
    expect(first.status).toBe(201);
    for (const email of [
      'nina.nurse\u200b@hospital.example',
      'n\u0456na.nurse@hospital.example',
      '\uff4eina.nurse@hospital.example',
      'nina.nurse@hospital.example.',
      'nina.nurse@HOSP\u0130TAL.example',
      'nina.nurse+2@hospital.example',
    ]) {
      const res = await createUser({
        email,
        name: 'Nina Nurse',
        npi: '1234567893',
        roles: ['nurse'],
      });
      expect(res.status).toBe(400);
      expect(res.json.field).toBe('email');
    }
    const sameId = await createUser({
      email: 'nina.other@hospital.example',
      name: 'Nina Other',
      employeeId: 'e-61',
      roles: ['nurse'],
    });
    expect(sameId.status).toBe(409);
    expect(sameId.json.field).toBe('employeeId');
  });

  it('refuses a name made only of generic words', async () => {
    const res = await createUser({
      email: 'a.admin@hospital.example',
      name: 'Admin Admin',
      employeeId: 'E-62',
      roles: ['nurse'],
    });
    expect(res.status).toBe(400);
    expect(res.json.field).toBe('name');
  });

  it('keeps the last active security officer an officer', async () => {
    await stepUp();
    const me = await identity().users.byEmail('grace.hopper@hospital.example');
    const demoted = await updateUser(me?.id as string, { roles: ['auditor'] });
    expect(demoted.status).toBe(409);
    expect(demoted.json.field).toBe('roles');
    expect((await identity().users.get(me?.id as string))?.roles).toEqual(['security_officer']);
  });

  it('refuses a name with a line break or a text-direction override', async () => {
    for (const name of ['Ruth\nBader', 'Ruth Bader\u202e', 'Ruth\u0000 Bader']) {
      const res = await createUser({
        email: 'ruth.bader@hospital.example',
        name,
        employeeId: 'E-77',
        roles: ['nurse'],
      });
      expect(res.status).toBe(400);
      expect(res.json.field).toBe('name');
    }
  });

  it('takes an employee id in one spelling only, so no person holds two', async () => {
    const res = await createUser({
      email: 'ruth.bader@hospital.example',
      name: 'Ruth Bader',
      employeeId: 'E-1 ',
      roles: ['nurse'],
    });
    expect(res.status).toBe(400);
    expect(res.json.field).toBe('employeeId');
  });

  it('refuses a service as a user, so no service can hold a PHI role', async () => {
    const res = await createUser({
      kind: 'service',
      email: 'etl@hospital.example',
      name: 'Nightly Export',
      roles: ['physician'],
    });
    expect(res.status).toBe(400);
    expect(res.json.field).toBe('kind');
    expect(res.json.reason).toMatch(/API key/);
    const listed = await call(base, 'GET', '/v1/users', { headers: bearer(officer.token) });
    expect(JSON.stringify(listed.json)).not.toContain('etl@hospital.example');
  });

  it('leaves the email free when a creation is refused for a taken employee id', async () => {
    const first = await createUser({
      email: 'dorothy.hodgkin@hospital.example',
      name: 'Dorothy Hodgkin',
      employeeId: 'E-20',
      roles: ['nurse'],
    });
    expect(first.status).toBe(201);
    const taken = await createUser({
      email: 'charles.babbage@hospital.example',
      name: 'Charles Babbage',
      employeeId: 'E-20',
      roles: ['nurse'],
    });
    expect(taken.status).toBe(409);
    expect(taken.json.field).toBe('employeeId');
    const again = await createUser({
      email: 'charles.babbage@hospital.example',
      name: 'Charles Babbage',
      employeeId: 'E-21',
      roles: ['nurse'],
    });
    expect(again.status).toBe(201);
  });

  it('leaves the email and employee id free when a creation is refused for a taken NPI', async () => {
    const first = await createUser({
      email: 'elizabeth.blackwell@hospital.example',
      name: 'Elizabeth Blackwell',
      npi: '1234567893',
      roles: ['physician'],
    });
    expect(first.status).toBe(201);
    const person = {
      email: 'james.barry@hospital.example',
      name: 'James Barry',
      employeeId: 'E-22',
      roles: ['physician'],
    };
    const taken = await createUser({ ...person, npi: '1234567893' });
    expect(taken.status).toBe(409);
    expect(taken.json.field).toBe('npi');
    const again = await createUser({ ...person, npi: '1234567901' });
    expect(again.status).toBe(201);
  });

  it('never deletes a uniqueness claim that another account holds', async () => {
    const { store, config } = runtime();
    const owner = await identity().users.byEmail('dorothy.hodgkin@hospital.example');
    const claim = keys.email('dorothy.hodgkin@hospital.example');
    await expect(
      store.delete(config.identityTable, claim, { expect: { userId: 'someone-else' } }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await store.get(config.identityTable, claim)).toMatchObject({ userId: owner?.id });
  });

  it('reports a store failure part-way through a creation even when giving claims back fails', async () => {
    const { store, config } = runtime();
    const outage = new Error('store unavailable');
    const failing: Store = Object.create(store) as Store;
    failing.put = async (table, item, options) => {
      if (String(item.pk).startsWith('PERSON#npi#')) throw outage;
      return store.put(table, item, options);
    };
    failing.delete = async () => {
      throw new Error('delete failed too');
    };
    const person = {
      email: 'hildegard.peplau@hospital.example',
      name: 'Hildegard Peplau',
      employeeId: 'E-23',
      npi: '1234567919',
      roles: ['nurse' as const],
    };
    await expect(new Users(failing, config.identityTable, clock).create(person)).rejects.toBe(
      outage,
    );
    // The failed delete left the email claim in place.
    await expect(new Users(store, config.identityTable, clock).create(person)).rejects.toThrow(
      'an account with this email exists already',
    );
  });

  it('refuses a common password at enrolment, saying what to fix', async () => {
    const created = await createUser({
      email: 'alan.turing@hospital.example',
      name: 'Alan Turing',
      employeeId: 'E-2',
      roles: ['physician'],
    });
    expect(created.status).toBe(201);
    const token = linkToken(created.json.enrolmentUrl);
    const weak = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token, password: 'Password1234' },
    });
    expect(weak.status).toBe(400);
    expect(weak.json.field).toBe('password');
    expect(weak.text).not.toContain('Password1234');
    const named = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token, password: 'alan turing rules!' },
    });
    expect(named.status).toBe(400);
    // A refused password does not spend the link.
    const good = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token, password: PASSWORD },
    });
    expect(good.status).toBe(200);
  });

  it('locks an account after five wrong passwords, refuses the right one without saying so, and audits the unlock', async () => {
    const created = await createUser({
      email: 'ada.lovelace@hospital.example',
      name: 'Ada Lovelace',
      employeeId: 'E-3',
      roles: ['nurse'],
    });
    const token = linkToken(created.json.enrolmentUrl);
    await enrol(base, clock, token);

    const wrong = [];
    for (let i = 0; i < 5; i += 1) {
      wrong.push(
        await call(base, 'POST', '/v1/auth/login', {
          body: { email: 'ada.lovelace@hospital.example', password: `wrong password ${i}!!` },
        }),
      );
    }
    expect(wrong.map((r) => r.status)).toEqual([401, 401, 401, 401, 401]);
    const sixth = await call(base, 'POST', '/v1/auth/login', {
      body: { email: 'ada.lovelace@hospital.example', password: PASSWORD },
    });
    expect(sixth.status).toBe(401);
    expect(sixth.json.reason).toBe(wrong[0]?.json.reason);

    const user = await identity().users.byEmail('ada.lovelace@hospital.example');
    expect(user?.status).toBe('locked');
    const unlocked = await call(base, 'POST', `/v1/users/${user?.id}/unlock`, {
      headers: bearer(officer.token),
      body: {},
    });
    expect(unlocked.status).toBe(200);
    expect(unlocked.json.status).toBe('active');

    const audit = await call(
      base,
      'GET',
      `/v1/audit-events?filter=${encodeURIComponent(JSON.stringify({ userId: officer.token ? (await identity().users.byEmail('grace.hopper@hospital.example'))?.id : '' }))}&range=[0,99]`,
      {
        headers: bearer(officer.token),
      },
    );
    expect(audit.status).toBe(200);
    expect(
      audit.json.some(
        (e: { reason?: string; resourceId: string }) =>
          e.reason === 'unlock' && e.resourceId === user?.id,
      ),
    ).toBe(true);
  });

  it('never accepts an identity provider token on API routes', async () => {
    const jwtLike = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEyMyJ9.c2lnbmF0dXJl';
    const res = await call(base, 'GET', '/v1/audit-events', { headers: bearer(jwtLike) });
    expect(res.status).toBe(401);
  });

  it('asks for step-up once the last MFA is older than five minutes', async () => {
    clock.advance(6 * 60_000);
    const stale = await createUser({
      email: 'rosalind.franklin@hospital.example',
      name: 'Rosalind Franklin',
      employeeId: 'E-4',
      roles: ['lab_technician'],
    });
    expect(stale.status).toBe(401);
    expect(stale.json.error).toBe('step_up_required');

    clock.advance(30_000);
    const up = await call(base, 'POST', '/v1/auth/step-up', {
      headers: bearer(officer.token),
      body: { code: totpAt(officer.secret, clock.now()) },
    });
    expect(up.status).toBe(200);
    const fresh = await createUser({
      email: 'rosalind.franklin@hospital.example',
      name: 'Rosalind Franklin',
      employeeId: 'E-4',
      roles: ['lab_technician'],
    });
    expect(fresh.status).toBe(201);
  });

  it('refuses a TOTP code used once already', async () => {
    clock.advance(30_000);
    const code = totpAt(officer.secret, clock.now());
    const first = await call(base, 'POST', '/v1/auth/step-up', {
      headers: bearer(officer.token),
      body: { code },
    });
    const again = await call(base, 'POST', '/v1/auth/step-up', {
      headers: bearer(officer.token),
      body: { code },
    });
    expect([first.status, again.status]).toEqual([200, 401]);
  });

  it('ends a session at logout at once', async () => {
    const token = await signIn('grace.hopper@hospital.example', officer.secret);
    expect((await call(base, 'GET', '/v1/auth/session', { headers: bearer(token) })).status).toBe(
      200,
    );
    expect(
      (await call(base, 'POST', '/v1/auth/logout', { headers: bearer(token), body: {} })).status,
    ).toBe(200);
    const after = await call(base, 'GET', '/v1/auth/session', { headers: bearer(token) });
    expect(after.status).toBe(401);
  });

  it('lists and revokes the sessions of a user, in simple-rest style', async () => {
    const token = await signIn('grace.hopper@hospital.example', officer.secret);
    const me = await call(base, 'GET', '/v1/auth/session', { headers: bearer(token) });
    const sessions = await call(base, 'GET', `/v1/users/${me.json.user.id}/sessions`, {
      headers: bearer(officer.token),
    });
    expect(sessions.status).toBe(200);
    expect(sessions.json.some((s: { id: string }) => s.id === me.json.sessionId)).toBe(true);
    const revoked = await call(
      base,
      'DELETE',
      `/v1/users/${me.json.user.id}/sessions/${me.json.sessionId}`,
      {
        headers: { ...bearer(officer.token), 'content-type': 'text/plain' },
      },
    );
    expect(revoked.status).toBe(200);
    expect(revoked.json.id).toBe(me.json.sessionId);
    expect(
      (await call(base, 'GET', '/v1/auth/session', { headers: bearer(token) })).json.error,
    ).toBe('revoked');
  });

  it('locks the account and ends its sessions when a session keeps guessing step-up codes', async () => {
    const created = await createUser({
      email: 'edith.cavell@hospital.example',
      name: 'Edith Cavell',
      employeeId: 'E-5',
      roles: ['nurse'],
    });
    const enrolled = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    for (let i = 0; i < 5; i += 1) {
      await call(base, 'POST', '/v1/auth/step-up', {
        headers: bearer(enrolled.token),
        body: { code: '000000' },
      });
    }
    const user = await identity().users.byEmail('edith.cavell@hospital.example');
    expect(user?.status).toBe('locked');
    const after = await call(base, 'GET', '/v1/auth/session', { headers: bearer(enrolled.token) });
    expect(after.status).toBe(401);
    clock.advance(30_000);
    const right = await call(base, 'POST', '/v1/auth/step-up', {
      headers: bearer(enrolled.token),
      body: { code: totpAt(enrolled.secret, clock.now()) },
    });
    expect(right.status).toBe(401);
  });

  it('does not let an officer unlock their own account', async () => {
    const me = await identity().users.byEmail('grace.hopper@hospital.example');
    clock.advance(30_000);
    await call(base, 'POST', '/v1/auth/step-up', {
      headers: bearer(officer.token),
      body: { code: totpAt(officer.secret, clock.now()) },
    });
    const res = await call(base, 'POST', `/v1/users/${me?.id}/unlock`, {
      headers: bearer(officer.token),
      body: {},
    });
    expect(res.status).toBe(403);
  });

  it('refuses an unknown field when creating a user, naming it', async () => {
    const res = await createUser({
      email: 'mary.anning@hospital.example',
      name: 'Mary Anning',
      employeeId: 'E-6',
      roles: ['nurse'],
      status: 'active',
    });
    expect(res.status).toBe(400);
    expect(res.json.field).toBe('status');
  });

  it('never lets an older link replace an authenticator enrolled since', async () => {
    const created = await createUser({
      email: 'virginia.apgar@hospital.example',
      name: 'Virginia Apgar',
      employeeId: 'E-70',
      roles: ['physician'],
    });
    await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    const reset = () =>
      call(base, 'POST', `/v1/users/${created.json.id}/reset-mfa`, {
        headers: bearer(officer.token),
        body: {},
      });
    const first = await reset();
    const second = await reset();
    const enrolled = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token: linkToken(second.json.enrolmentUrl), password: PASSWORD },
    });
    expect(enrolled.json.status).toBe('mfa_enrolment_required');
    clock.advance(30_000);
    const confirmed = await call(base, 'POST', '/v1/auth/mfa', {
      body: {
        ticket: enrolled.json.ticket,
        code: totpAt(enrolled.json.totp.secret, clock.now()),
      },
    });
    expect(confirmed.status).toBe(200);

    const stale = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token: linkToken(first.json.enrolmentUrl), password: PASSWORD },
    });
    expect(stale.status).toBe(404);
    expect(stale.json.field).toBe('token');
  });

  it('keeps the link of a locked account, and checks no password with it', async () => {
    const created = await createUser({
      email: 'clara.maass@hospital.example',
      name: 'Clara Maass',
      employeeId: 'E-72',
      roles: ['nurse'],
    });
    await call(base, 'POST', `/v1/users/${created.json.id}/lock`, {
      headers: bearer(officer.token),
      body: {},
    });
    const link = linkToken(created.json.enrolmentUrl);
    const wrong = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token: link, password: 'not even checked here 1' },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.json.error).toBe('account_not_active');
    await call(base, 'POST', `/v1/users/${created.json.id}/unlock`, {
      headers: bearer(officer.token),
      body: {},
    });
    const own = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token: link, password: PASSWORD },
    });
    expect(own.json.status).toBe('mfa_enrolment_required');
  });

  it('does not let an officer reset their own MFA, and names no user for an id that is none', async () => {
    const me = await identity().users.byEmail('grace.hopper@hospital.example');
    const self = await call(base, 'POST', `/v1/users/${me?.id}/reset-mfa`, {
      headers: bearer(officer.token),
      body: { resetPassword: true },
    });
    expect(self.status).toBe(403);
    const long = await call(base, 'GET', `/v1/users/${'x'.repeat(3000)}`, {
      headers: bearer(officer.token),
    });
    expect(long.status).toBe(404);
  });

  it('changes only the spelling of an employee id without a conflict with itself', async () => {
    const created = await createUser({
      email: 'agnes.hunt@hospital.example',
      name: 'Agnes Hunt',
      employeeId: 'E-73',
      roles: ['nurse'],
    });
    await stepUp();
    const res = await updateUser(created.json.id, { employeeId: 'e-73' });
    expect(res.status).toBe(200);
    expect(res.json.employeeId).toBe('e-73');
  });

  it('after an MFA reset, enrols a new authenticator only through the new link', async () => {
    const created = await createUser({
      email: 'florence.n@hospital.example',
      name: 'Florence Nightingale',
      employeeId: 'E-7',
      roles: ['nurse'],
    });
    const enrolled = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    expect(enrolled.body.recoveryCodes).toHaveLength(10);
    const reset = await call(base, 'POST', `/v1/users/${created.json.id}/reset-mfa`, {
      headers: bearer(officer.token),
      body: {},
    });
    expect(reset.status).toBe(200);
    const login = (password: string) =>
      call(base, 'POST', '/v1/auth/login', {
        body: { email: 'florence.n@hospital.example', password },
      });
    const right = await login(PASSWORD);
    const wrong = await login('not her password at all 7');
    // The same answer either way: a reset must not confirm a guessed password.
    expect([right.status, wrong.status]).toEqual([401, 401]);
    expect(right.json.reason).toBe(wrong.json.reason);

    const useLink = (password: string) =>
      call(base, 'POST', '/v1/auth/enrol', {
        body: { token: linkToken(reset.json.enrolmentUrl), password },
      });
    // Whoever holds the link still needs the person's password; a wrong one keeps the link.
    const renamed = await call(base, 'POST', '/v1/auth/enrol', {
      body: {
        token: linkToken(reset.json.enrolmentUrl),
        password: PASSWORD,
        email: 'x.y@hospital.example',
      },
    });
    expect(renamed.status).toBe(400);
    expect(renamed.json.field).toBe('email');
    const guessed = await useLink('an officer chose this one 9');
    expect(guessed.status).toBe(401);
    const link = await useLink(PASSWORD);
    expect(link.json.status).toBe('mfa_enrolment_required');
    const stored = await identity().users.get(created.json.id);
    expect(stored?.passwordHash).toBeDefined();
  });

  it('resets the password with the authenticator only when asked, and says so in the audit', async () => {
    const created = await createUser({
      email: 'mary.seacole@hospital.example',
      name: 'Mary Seacole',
      employeeId: 'E-80',
      roles: ['nurse'],
    });
    await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    const reset = await call(base, 'POST', `/v1/users/${created.json.id}/reset-mfa`, {
      headers: bearer(officer.token),
      body: { resetPassword: true },
    });
    expect(reset.status).toBe(200);
    expect(reset.json.status).toBe('invited');

    const newPassword = 'violet lanterns over quiet harbours 3';
    const link = await call(base, 'POST', '/v1/auth/enrol', {
      body: { token: linkToken(reset.json.enrolmentUrl), password: newPassword },
    });
    expect(link.json.status).toBe('mfa_enrolment_required');
    const old = await call(base, 'POST', '/v1/auth/login', {
      body: { email: 'mary.seacole@hospital.example', password: PASSWORD },
    });
    expect(old.status).toBe(401);

    const bad = await call(base, 'POST', `/v1/users/${created.json.id}/reset-mfa`, {
      headers: bearer(officer.token),
      body: { resetPassword: 'yes' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.field).toBe('resetPassword');
  });

  it('takes a recovery code in the code field and refuses it the second time', async () => {
    const created = await createUser({
      email: 'mary.somerville@hospital.example',
      name: 'Mary Somerville',
      employeeId: 'E-8',
      roles: ['auditor'],
    });
    const enrolled = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    const recovery = enrolled.body.recoveryCodes?.[0] as string;
    const login = async () =>
      (
        await call(base, 'POST', '/v1/auth/login', {
          body: { email: 'mary.somerville@hospital.example', password: PASSWORD },
        })
      ).json.ticket;
    const first = await call(base, 'POST', '/v1/auth/mfa', {
      body: { ticket: await login(), code: recovery },
    });
    expect(first.status).toBe(200);
    const again = await call(base, 'POST', '/v1/auth/mfa', {
      body: { ticket: await login(), code: recovery },
    });
    expect(again.status).toBe(401);
  });

  it('refuses an account for an identity provider account linked to another, keeping nothing', async () => {
    const { users } = identity();
    const federated = { issuer: 'https://idp.hospital.example', subject: 'u-77' };
    const first = await users.create({
      email: 'gertrude.elion@hospital.example',
      name: 'Gertrude Elion',
      roles: ['pharmacist'],
      federated,
    });
    const person = {
      email: 'gerty.cori@hospital.example',
      name: 'Gerty Cori',
      employeeId: 'E-48',
      roles: ['pharmacist' as const],
    };
    await expect(users.create({ ...person, federated })).rejects.toMatchObject({
      field: 'subject',
      status: 409,
    });
    expect(await users.byFederated(federated.issuer, federated.subject)).toMatchObject({
      id: first.user.id,
    });
    // The refused creation gave back its email and employee id.
    expect((await users.create(person)).user).toMatchObject({ employeeId: 'E-48' });
  });

  it('checks a change to a user as it checks a new user, and stores nothing it refuses', async () => {
    await stepUp();
    const created = await createUser({
      email: 'katherine.johnson@hospital.example',
      name: 'Katherine Johnson',
      employeeId: 'E-40',
      roles: ['nurse'],
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const before = await identity().users.get(id);

    const refused: Array<[Record<string, unknown>, number, string]> = [
      [{ roles: ['superuser', '__proto__'] }, 400, 'roles'],
      [{ roles: [] }, 400, 'roles'],
      [{ name: 'admin' }, 400, 'name'],
      // E-1 belongs to the officer.
      [{ employeeId: 'E-1' }, 409, 'employeeId'],
      [{ npi: '1234567890' }, 400, 'npi'],
      // A person keeps an employee id or an NPI.
      [{ employeeId: null }, 400, 'employeeId'],
    ];
    for (const [body, status, field] of refused) {
      const res = await updateUser(id, body);
      expect({ body, status: res.status, field: res.json.field }).toEqual({ body, status, field });
    }

    expect(await identity().users.get(id)).toEqual(before);
    const officerId = (await identity().users.byEmail('grace.hopper@hospital.example'))?.id;
    expect(await claimOf('employeeId', 'E-1')).toMatchObject({ userId: officerId });
    expect(await claimOf('employeeId', 'E-40')).toMatchObject({ userId: id });
  });

  it('moves a user to a free employee id and frees the old one for another person', async () => {
    await stepUp();
    const created = await createUser({
      email: 'dorothy.vaughan@hospital.example',
      name: 'Dorothy Vaughan',
      employeeId: 'E-41',
      roles: ['nurse'],
    });
    const id = created.json.id as string;

    const moved = await updateUser(id, { employeeId: 'E-42', name: 'Dorothy J. Vaughan' });

    expect(moved.status).toBe(200);
    expect(moved.json).toMatchObject({ id, employeeId: 'E-42', name: 'Dorothy J. Vaughan' });
    expect(await claimOf('employeeId', 'E-42')).toMatchObject({ userId: id });
    expect(await claimOf('employeeId', 'E-41')).toBeUndefined();
    const other = await createUser({
      email: 'mary.jackson@hospital.example',
      name: 'Mary Jackson',
      employeeId: 'E-41',
      roles: ['nurse'],
    });
    expect(other.status).toBe(201);
  });

  it('ends the sessions of a user whose roles change, and only then', async () => {
    await stepUp();
    const created = await createUser({
      email: 'hedy.lamarr@hospital.example',
      name: 'Hedy Lamarr',
      employeeId: 'E-91',
      roles: ['nurse'],
    });
    expect(created.json).toMatchObject({ status: 'invited' });
    const enrolled = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    const alive = () => call(base, 'GET', '/v1/auth/session', { headers: bearer(enrolled.token) });

    await stepUp();
    const sameRoles = await updateUser(created.json.id, {
      roles: ['nurse'],
      name: 'Hedy K. Lamarr',
    });
    const afterSame = await alive();
    const newRoles = await updateUser(created.json.id, { roles: ['pharmacist'] });
    const afterNew = await alive();

    expect([sameRoles.status, afterSame.status]).toEqual([200, 200]);
    expect([newRoles.status, afterNew.status]).toEqual([200, 401]);
    expect(afterNew.json.error).toBe('revoked');
  });

  it('gives a new employee id to only one of two users changed to it at the same moment', async () => {
    await stepUp();
    const ids: string[] = [];
    for (const [email, name, employeeId] of [
      ['annie.easley@hospital.example', 'Annie Easley', 'E-43'],
      ['christine.darden@hospital.example', 'Christine Darden', 'E-44'],
    ] as const) {
      const created = await createUser({ email, name, employeeId, roles: ['nurse'] });
      expect(created.status).toBe(201);
      ids.push(created.json.id as string);
    }

    const answers = await Promise.all(ids.map((id) => updateUser(id, { employeeId: 'E-45' })));

    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409]);
    expect(answers.find((answer) => answer.status === 409)?.json.field).toBe('employeeId');
    const stored = await Promise.all(ids.map((id) => identity().users.get(id)));
    const holders = stored.filter((user) => user?.employeeId === 'E-45');
    expect(holders).toHaveLength(1);
    expect(await claimOf('employeeId', 'E-45')).toMatchObject({ userId: holders[0]?.id });
    // The other account keeps its own employee id, and the claim on it.
    const other = stored.find((user) => user?.employeeId !== 'E-45');
    expect(['E-43', 'E-44']).toContain(other?.employeeId);
    expect(await claimOf('employeeId', other?.employeeId as string)).toMatchObject({
      userId: other?.id,
    });
  });

  it('answers the revocation of a session with the session as stored, however it had ended', async () => {
    await stepUp();
    const email = 'mae.jemison@hospital.example';
    const created = await createUser({
      email,
      name: 'Mae Jemison',
      employeeId: 'E-46',
      roles: ['physician'],
    });
    const id = created.json.id as string;
    const enrolled = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    const oldest = await call(base, 'GET', '/v1/auth/session', { headers: bearer(enrolled.token) });
    // Three sessions at once at most: the fourth sign-in ends the oldest.
    let newest = '';
    for (let i = 0; i < 3; i += 1) newest = await signIn(email, enrolled.secret);
    const listed = await call(base, 'GET', `/v1/users/${id}/sessions`, {
      headers: bearer(officer.token),
    });
    const ended = listed.json.find((s: { id: string }) => s.id === oldest.json.sessionId);
    expect(ended).toMatchObject({ endReason: 'limit', endedAt: expect.any(String) });
    const revoke = (sessionId: string) =>
      call(base, 'DELETE', `/v1/users/${id}/sessions/${sessionId}`, {
        headers: { ...bearer(officer.token), 'content-type': 'text/plain' },
      });

    const again = await revoke(oldest.json.sessionId);

    expect(again.status).toBe(200);
    expect(again.json).toEqual(ended);

    const live = await call(base, 'GET', '/v1/auth/session', { headers: bearer(newest) });
    const revoked = await revoke(live.json.sessionId);
    expect(revoked.status).toBe(200);
    expect(revoked.json).toMatchObject({
      id: live.json.sessionId,
      endReason: 'revoked',
      endedAt: clock.now().toISOString(),
    });
  });

  it('keeps a session alive on activity and ends it after 15 idle minutes, through the routes', async () => {
    const created = await createUser({
      email: 'lise.meitner@hospital.example',
      name: 'Lise Meitner',
      employeeId: 'E-31',
      roles: ['nurse'],
    });
    if (created.status === 401) throw new Error('the officer needs a fresh step-up for this test');
    const { token } = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    const start = clock.now().getTime();
    const at = (minutes: number, seconds = 0) => {
      clock.advance(start + (minutes * 60 + seconds) * 1000 - clock.now().getTime());
    };
    const probe = async () => call(base, 'GET', '/v1/auth/session', { headers: bearer(token) });

    for (const minute of [5, 14, 28, 42]) {
      at(minute);
      expect((await probe()).status).toBe(200);
    }
    at(56, 59);
    expect((await probe()).status).toBe(200);
    at(71, 60);
    const ended = await probe();
    expect(ended.status).toBe(401);
    expect(ended.json.error).toBe('expired_idle');
  });

  // Near the end: whichever demotion wins may end the first officer's sessions.
  it('leaves an active officer when two officers demote each other at once', async () => {
    // A fresh session: the idle test before this one outlived the first.
    officer.token = await signIn('grace.hopper@hospital.example', officer.secret);
    const created = await createUser({
      email: 'mary.mahoney@hospital.example',
      name: 'Mary Mahoney',
      employeeId: 'E-90',
      roles: ['security_officer'],
    });
    const second = await enrol(base, clock, linkToken(created.json.enrolmentUrl));
    await stepUp();
    const me = (await identity().users.byEmail('grace.hopper@hospital.example'))?.id as string;
    const officers = async () =>
      (await identity().users.list()).filter(
        (u) => u.roles.includes('security_officer') && u.status === 'active',
      );

    const demotions = await Promise.all([
      updateUser(created.json.id, { roles: ['auditor'] }),
      call(base, 'PUT', `/v1/users/${me}`, {
        headers: bearer(second.token),
        body: { roles: ['auditor'] },
      }),
    ]);
    expect(demotions.some((res) => res.status === 409)).toBe(true);
    expect((await officers()).length).toBeGreaterThanOrEqual(1);
  });

  it('slows an address that keeps failing, with 429 and Retry-After', async () => {
    let last;
    for (let i = 0; i < 25; i += 1) {
      last = await call(base, 'POST', '/v1/auth/login', {
        body: { email: `nobody${i}@hospital.example`, password: 'not the password at all' },
      });
      if (last.status === 429) break;
    }
    expect(last?.status).toBe(429);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
