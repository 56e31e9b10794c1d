import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { identity, resetIdentity } from '../../functions/identity/context';
import { totpAt } from '../../functions/identity/totp';
import { listRecords } from '../../functions/audit/query';
import { runtime } from '../../functions/platform/runtime';
import { call, startTestPlatform, type TestPlatform } from '../support/platform';

const ISSUER = 'https://idp.hospital.example';
const AUDIENCE = 'vigil-console';

/** An identity provider on 127.0.0.1: its key set served over HTTP, and tokens it signs. */
async function startIdp() {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const ec = await generateKeyPair('ES256');
  const ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' };
  const jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk, ecJwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', () => resolve()));
  const port = (jwks.address() as AddressInfo).port;
  return {
    sign: (claims: Record<string, unknown>, expiry = '5m') =>
      new SignJWT({ iss: ISSUER, aud: AUDIENCE, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuedAt()
        .setExpirationTime(expiry)
        .sign(privateKey),
    signEs: (claims: Record<string, unknown>) =>
      new SignJWT({ iss: ISSUER, aud: AUDIENCE, ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'k2' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(ec.privateKey),
    /** What Vigil is configured with to trust this provider. */
    env: {
      VIGIL_OIDC_ISSUER: ISSUER,
      VIGIL_OIDC_AUDIENCE: AUDIENCE,
      VIGIL_OIDC_JWKS_URL: `http://127.0.0.1:${port}/jwks`,
      VIGIL_OIDC_ROLE_MAP: JSON.stringify({
        'ehr-nurses': 'nurse',
        'sec-team': 'security_officer',
      }),
    },
    stop: () => new Promise<void>((resolve) => jwks.close(() => resolve())),
  };
}

/**
 * Federated sign-in through the real route: a verified ID token becomes a Vigil session (MFA
 * proved upstream) or a request for Vigil's own TOTP; a raw IdP token never works elsewhere.
 */
describe('OIDC sign-in over HTTP', () => {
  let t: TestPlatform;
  let idp: Awaited<ReturnType<typeof startIdp>>;
  const sign = (claims: Record<string, unknown>, expiry?: string) => idp.sign(claims, expiry);
  const signEs = (claims: Record<string, unknown>) => idp.signEs(claims);
  const saved = { ...process.env };

  beforeAll(async () => {
    idp = await startIdp();
    t = await startTestPlatform();
    Object.assign(process.env, idp.env);
    resetIdentity();
  });
  afterAll(async () => {
    process.env = saved;
    resetIdentity();
    await t.stop();
    await idp.stop();
  });

  it('provisions a user from verified claims and signs in when the IdP proved MFA', async () => {
    const idToken = await sign({
      sub: 'okta|1',
      email: 'mary.seacole@hospital.example',
      email_verified: true,
      name: 'Mary Seacole',
      groups: ['ehr-nurses'],
      amr: ['pwd', 'otp'],
    });
    const res = await call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', { body: { idToken } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      status: 'signed_in',
      user: { email: 'mary.seacole@hospital.example', roles: ['nurse'] },
    });
    expect(res.headers.get('set-cookie')).toMatch(/HttpOnly; Secure; SameSite=Strict/);

    const session = await call(t.platform.httpUrl, 'GET', '/v1/auth/session', {
      headers: { authorization: `Bearer ${res.json.token}` },
    });
    expect(session.status).toBe(200);
  });

  it('asks for Vigil TOTP when the token does not say MFA', async () => {
    const idToken = await sign({
      sub: 'okta|2',
      email: 'john.snow@hospital.example',
      email_verified: true,
      name: 'John Snow',
      groups: ['sec-team'],
      amr: ['pwd'],
    });
    const res = await call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', { body: { idToken } });
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('mfa_enrolment_required');
    const done = await call(t.platform.httpUrl, 'POST', '/v1/auth/mfa', {
      body: { ticket: res.json.ticket, code: totpAt(res.json.totp.secret, new Date()) },
    });
    expect(done.status).toBe(200);
    expect(done.json.user.roles).toEqual(['security_officer']);
  });

  it('refuses a token for another audience with 401', async () => {
    const idToken = await sign({ sub: 'okta|3', aud: 'billing-portal', groups: ['ehr-nurses'] });
    const res = await call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', { body: { idToken } });
    expect(res.status).toBe(401);
  });

  it('never takes the IdP token itself on an API route', async () => {
    const idToken = await sign({ sub: 'okta|1', groups: ['sec-team'], amr: ['mfa'] });
    const res = await call(t.platform.httpUrl, 'GET', '/v1/audit-events', {
      headers: { authorization: `Bearer ${idToken}` },
    });
    expect(res.status).toBe(401);
  });

  it('with provisioning limited to existing accounts, links one an officer made and refuses others', async () => {
    process.env.VIGIL_FEDERATED_PROVISIONING = 'existing';
    resetIdentity();
    await identity().users.create({
      email: 'clara.barton@hospital.example',
      name: 'Clara Barton',
      employeeId: 'E-21',
      roles: ['nurse'],
    });
    const known = await sign({
      sub: 'okta|21',
      email: 'clara.barton@hospital.example',
      email_verified: true,
      groups: ['ehr-nurses'],
      amr: ['mfa'],
    });
    const linked = await call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', {
      body: { idToken: known },
    });
    expect(linked.json).toMatchObject({
      status: 'signed_in',
      user: { email: 'clara.barton@hospital.example' },
    });
    const stranger = await sign({
      sub: 'okta|22',
      email: 'walt.whitman@hospital.example',
      email_verified: true,
      groups: ['ehr-nurses'],
      amr: ['mfa'],
    });
    const refused = await call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', {
      body: { idToken: stranger },
    });
    expect(refused.status).toBe(403);
    expect(refused.json.error).toBe('not_provisioned');
    delete process.env.VIGIL_FEDERATED_PROVISIONING;
    resetIdentity();
  });

  const exchange = (idToken: string) =>
    call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', { body: { idToken } });

  it('exchanges an ID token once: the same token again is refused', async () => {
    const idToken = await sign({
      sub: 'okta|30',
      email: 'ada.lovelace@hospital.example',
      name: 'Ada Lovelace',
      email_verified: true,
      groups: ['ehr-nurses'],
      amr: ['mfa'],
    });

    const first = await exchange(idToken);
    const again = await exchange(idToken);

    expect(first.json).toMatchObject({ status: 'signed_in' });
    expect(again.status).toBe(401);
    expect(again.json).toMatchObject({ error: 'invalid_token', reason: 'replayed' });
  });

  it('exchanges an ECDSA-signed token once, however its signature is spelt', async () => {
    const idToken = await signEs({
      sub: 'okta|31',
      email: 'grace.hopper@hospital.example',
      name: 'Grace Hopper',
      email_verified: true,
      groups: ['ehr-nurses'],
      amr: ['mfa'],
    });
    // (r, s) and (r, n - s) are both valid P-256 signatures over the same bytes.
    const [header, payload, signature] = idToken.split('.') as [string, string, string];
    const raw = Buffer.from(signature, 'base64url');
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const s = BigInt(`0x${raw.subarray(32).toString('hex')}`);
    const flipped = Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex');
    const twin = `${header}.${payload}.${Buffer.concat([raw.subarray(0, 32), flipped]).toString('base64url')}`;

    const first = await exchange(idToken);
    const second = await exchange(twin);

    expect(first.json).toMatchObject({ status: 'signed_in' });
    expect(twin).not.toBe(idToken);
    expect(second.status).toBe(401);
    expect(second.json).toMatchObject({ error: 'invalid_token', reason: 'replayed' });
  });

  it('names a person from the email when the provider sends no name, and cleans a name it sends', async () => {
    const unnamed = await exchange(
      await sign({
        sub: 'okta|42',
        email: 'dorothy.vaughan@hospital.example',
        email_verified: true,
        groups: ['ehr-nurses'],
        amr: ['mfa'],
      }),
    );
    const escaped = await exchange(
      await sign({
        sub: 'okta|43',
        email: 'katherine.johnson@hospital.example',
        email_verified: true,
        name: 'Katherine\u001b[31m\nJohnson\u202e',
        groups: ['ehr-nurses'],
        amr: ['mfa'],
      }),
    );

    expect(unnamed.json).toMatchObject({ status: 'signed_in', user: { name: 'Dorothy Vaughan' } });
    expect(escaped.json).toMatchObject({
      status: 'signed_in',
      user: { name: 'Katherine [31m Johnson' },
    });
  });

  it('refuses a token that stays valid for more than a day', async () => {
    const longLived = await sign({ sub: 'okta|31', groups: ['ehr-nurses'], amr: ['mfa'] }, '10y');

    const res = await exchange(longLived);

    expect(res.status).toBe(401);
    expect(res.json.reason).toBe('lifetime');
  });

  it('follows the identity provider: a removed group removes the role and ends old sessions', async () => {
    const claims = {
      sub: 'okta|32',
      email: 'rosalind.franklin@hospital.example',
      name: 'Rosalind Franklin',
      email_verified: true,
      amr: ['mfa'],
    };
    const asNurse = await exchange(await sign({ ...claims, groups: ['ehr-nurses'] }));
    expect(asNurse.json.user.roles).toEqual(['nurse']);

    const asOfficer = await exchange(await sign({ ...claims, groups: ['sec-team'] }));
    const oldSession = await call(t.platform.httpUrl, 'GET', '/v1/auth/session', {
      headers: { authorization: `Bearer ${asNurse.json.token}` },
    });
    const noGroups = await exchange(await sign({ ...claims, groups: [] }));

    expect(asOfficer.json.user.roles).toEqual(['security_officer']);
    expect(oldSession.status).toBe(401);
    expect(noGroups.status).toBe(403);
    expect(noGroups.json.error).toBe('not_provisioned');
    const officerSession = await call(t.platform.httpUrl, 'GET', '/v1/auth/session', {
      headers: { authorization: `Bearer ${asOfficer.json.token}` },
    });
    expect(officerSession.status).toBe(401);
    const user = await identity().users.byEmail('rosalind.franklin@hospital.example');
    expect(user?.roles).toEqual([]);
  });

  it('never enrols an authenticator on a single-factor sign-in once MFA came from upstream', async () => {
    const claims = {
      sub: 'okta|33',
      email: 'alan.turing@hospital.example',
      name: 'Alan Turing',
      email_verified: true,
      groups: ['ehr-nurses'],
    };
    const withMfa = await exchange(await sign({ ...claims, amr: ['pwd', 'mfa'] }));
    expect(withMfa.json.status).toBe('signed_in');

    const passwordOnly = await exchange(await sign({ ...claims, amr: ['pwd'] }));

    expect(passwordOnly.status).toBe(401);
    expect(JSON.stringify(passwordOnly.json)).not.toMatch(/otpauth|secret/);
    const stepUp = await call(t.platform.httpUrl, 'POST', '/v1/auth/step-up', {
      headers: { authorization: `Bearer ${withMfa.json.token}` },
      body: { code: '123456' },
    });
    expect(stepUp.status).toBe(400);
    expect(stepUp.json.reason).toMatch(/identity provider: sign in there again/);
  });

  it('does not tell an unknown IdP user that an account holds their email', async () => {
    await identity().users.create({
      email: 'grace.murray@hospital.example',
      name: 'Grace Murray',
      employeeId: 'E-33',
      roles: ['nurse'],
    });

    const res = await exchange(
      await sign({
        sub: 'okta|34',
        email: 'grace.murray@hospital.example',
        name: 'Grace Murray',
        email_verified: true,
        groups: ['ehr-nurses'],
        amr: ['mfa'],
      }),
    );

    expect(res.status).toBe(403);
    expect(res.json.error).toBe('not_provisioned');
  });

  it('says which claim is missing when the claims cannot make an account', async () => {
    const res = await exchange(
      await sign({
        sub: 'okta|37',
        email: 'frontdesk2@hospital.example',
        email_verified: true,
        name: 'Front Desk',
        groups: ['ehr-nurses'],
        amr: ['mfa'],
      }),
    );

    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: 'not_provisioned', field: 'email' });
  });

  it('links only an account nobody has used, and only by a verified email', async () => {
    process.env.VIGIL_FEDERATED_PROVISIONING = 'existing';
    resetIdentity();
    const users = identity().users;
    const { user: used } = await users.create({
      email: 'ann.officer@hospital.example',
      name: 'Ann Officer',
      employeeId: 'E-35',
      roles: ['security_officer'],
    });
    await users.update(used.id, { status: 'active', passwordHash: 'scrypt$placeholder' } as never);
    await users.create({
      email: 'ida.wells@hospital.example',
      name: 'Ida Wells',
      employeeId: 'E-36',
      roles: ['nurse'],
    });

    const takeover = await exchange(
      await sign({
        sub: 'attacker-9',
        email: 'ANN.OFFICER@hospital.example',
        email_verified: true,
        groups: [],
        amr: ['mfa'],
      }),
    );
    const unverified = await exchange(
      await sign({ sub: 'okta|36', email: 'ida.wells@hospital.example', groups: [], amr: ['mfa'] }),
    );

    expect(takeover.status).toBe(403);
    expect(unverified.status).toBe(403);
    expect((await users.get(used.id))?.federated).toBeUndefined();
    delete process.env.VIGIL_FEDERATED_PROVISIONING;
    resetIdentity();
  });

  it('does not provision an account from an email the provider does not vouch for', async () => {
    const res = await exchange(
      await sign({
        sub: 'okta|40',
        email: 'victor.hale@hospital.example',
        name: 'Victor Hale',
        groups: ['ehr-nurses'],
        amr: ['mfa'],
      }),
    );

    expect(res.status).toBe(403);
    expect(await identity().users.byEmail('victor.hale@hospital.example')).toBeUndefined();
  });

  it('links an account to one provider identity, however many sign-ins race for it', async () => {
    process.env.VIGIL_FEDERATED_PROVISIONING = 'existing';
    resetIdentity();
    const { user, enrolmentToken } = await identity().users.create({
      email: 'paul.reyes@hospital.example',
      name: 'Paul Reyes',
      employeeId: 'E-41',
      roles: ['nurse'],
    });
    const tokens = await Promise.all(
      ['okta|41a', 'okta|41b', 'okta|41c'].map((sub) =>
        sign({ sub, email: 'paul.reyes@hospital.example', email_verified: true, amr: ['mfa'] }),
      ),
    );

    const answers = await Promise.all(tokens.map(exchange));
    const enrolLater = await call(t.platform.httpUrl, 'POST', '/v1/auth/enrol', {
      body: { token: enrolmentToken, password: 'Lantern-oyster-7429!' },
    });

    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 403, 403]);
    const linked = await identity().users.get(user.id);
    const winner = answers.findIndex((answer) => answer.status === 200);
    expect(linked?.federated?.subject).toBe(['okta|41a', 'okta|41b', 'okta|41c'][winner]);
    // The officer's link from before the provider took over no longer works.
    expect(enrolLater.status).toBe(404);
    delete process.env.VIGIL_FEDERATED_PROVISIONING;
    resetIdentity();
  });

  it('fails closed with 503 when the key set cannot be fetched', async () => {
    process.env.VIGIL_OIDC_JWKS_URL = 'http://127.0.0.1:9/jwks';
    resetIdentity();
    const idToken = await sign({ sub: 'okta|4', groups: ['ehr-nurses'] });
    const res = await call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', { body: { idToken } });
    expect(res.status).toBe(503);
    expect(identity()).toBeDefined();
  });
});

/** Refused federated sign-ins leave a trace and slow the address down, as wrong passwords do. */
describe('refused OIDC sign-ins', () => {
  let t: TestPlatform;
  let idp: Awaited<ReturnType<typeof startIdp>>;
  const saved = { ...process.env };

  beforeAll(async () => {
    idp = await startIdp();
    t = await startTestPlatform();
    Object.assign(process.env, idp.env, { VIGIL_LOCKOUT_MAX_FAILURES_PER_IP: '3' });
    resetIdentity();
  });
  afterAll(async () => {
    process.env = saved;
    resetIdentity();
    await t.stop();
    await idp.stop();
  });

  it('are audited with their reason and counted against the address', async () => {
    const exchange = (idToken: string) =>
      call(t.platform.httpUrl, 'POST', '/v1/auth/oidc', { body: { idToken } });
    const wrongAudience = await idp.sign({ sub: 'okta|90', aud: 'billing-portal' });
    const replayable = await idp.sign({
      sub: 'okta|91',
      email: 'rosalind.franklin@hospital.example',
      name: 'Rosalind Franklin',
      email_verified: true,
      groups: ['ehr-nurses'],
      amr: ['mfa'],
    });

    expect((await exchange(wrongAudience)).json).toMatchObject({ reason: 'audience' });
    expect((await exchange(replayable)).json).toMatchObject({ status: 'signed_in' });
    expect((await exchange(replayable)).json).toMatchObject({ reason: 'replayed' });
    expect((await exchange('not.a.token')).status).toBe(401);
    const limited = await exchange(await idp.sign({ sub: 'okta|92', groups: ['ehr-nurses'] }));

    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    const rt = runtime();
    const { items } = await listRecords(
      rt.store,
      rt.config.auditTable,
      {
        sort: { field: 'timestamp', order: 'ASC' },
        range: { start: 0, end: 99 },
        filter: { userId: 'unknown' },
      },
      new Date(),
    );
    const reasons = items.map((item) => item.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        'login_failed: oidc: audience',
        'login_failed: oidc: replayed',
        'login_failed: oidc: malformed',
      ]),
    );
    expect(JSON.stringify(items)).not.toContain(replayable);
  });
});
