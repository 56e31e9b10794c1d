import { resetIdentity } from '../../functions/identity/context';
import { call, startTestPlatform, type TestPlatform } from '../support/platform';
import { ACS, IDP, SP, signedResponse, trusted } from '../support/saml-idp';

/** SAML sign-in through the real route, as the IdP's browser form posts it. */
describe('SAML sign-in over HTTP', () => {
  let t: TestPlatform;
  const saved = { ...process.env };

  beforeAll(async () => {
    t = await startTestPlatform();
    Object.assign(process.env, {
      VIGIL_SAML_ENTRY_POINT: 'https://sts.example.test/tenant-1/saml2',
      VIGIL_SAML_ISSUER: SP,
      VIGIL_SAML_AUDIENCE: SP,
      VIGIL_SAML_CALLBACK_URL: ACS,
      VIGIL_SAML_IDP_CERT: trusted.certificate,
      VIGIL_SAML_IDP_ISSUER: IDP,
      VIGIL_SAML_ROLE_MAP: JSON.stringify({ 'g-auditors': 'auditor' }),
    });
    resetIdentity();
  });
  afterAll(async () => {
    process.env = saved;
    resetIdentity();
    await t.stop();
  });

  const post = (response: string, cookie?: string) =>
    call(t.platform.httpUrl, 'POST', '/v1/auth/saml', {
      body: new URLSearchParams({ SAMLResponse: response }).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(cookie && { cookie }),
      },
    });

  /** The browser starts at Vigil, which sends it to the IdP holding a cookie for the request. */
  async function startSignIn() {
    const res = await call(t.platform.httpUrl, 'GET', '/v1/auth/saml/login');
    expect(res.status).toBe(302);
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = setCookie.split(';')[0] as string;
    const requestId = cookie.split('=')[1] as string;
    return { res, setCookie, cookie, requestId };
  }

  it('starts a sign-in with a redirect to the IdP and a cookie naming the request', async () => {
    const { res, setCookie, requestId } = await startSignIn();

    expect(res.headers.get('location')).toMatch(
      /^https:\/\/sts\.example\.test\/tenant-1\/saml2\?SAMLRequest=/,
    );
    expect(requestId).toMatch(/^_[0-9a-f]{40}$/);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('Secure');
    expect(setCookie).toContain('SameSite=None');
    expect(setCookie).toContain('Path=/v1/auth/saml');
  });

  it('provisions the person and asks for Vigil TOTP, since SAML carries no MFA claim', async () => {
    const { cookie, requestId } = await startSignIn();
    const response = signedResponse({ inResponseTo: requestId });

    const res = await post(response, cookie);
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('mfa_enrolment_required');

    const replay = await post(response, cookie);
    expect(replay.status).toBe(401);
  });

  it('refuses an answer posted into a browser that did not start the sign-in', async () => {
    const { requestId } = await startSignIn();

    const res = await post(signedResponse({ inResponseTo: requestId }));

    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ error: 'invalid_token', reason: 'request_mismatch' });
  });

  it('refuses a response nobody asked for', async () => {
    const res = await post(signedResponse());

    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ reason: 'unsolicited' });
  });

  it('refuses an assertion for another audience', async () => {
    const { cookie, requestId } = await startSignIn();
    const res = await post(
      signedResponse({ inResponseTo: requestId, audience: 'https://other.example.test' }),
      cookie,
    );
    expect(res.status).toBe(401);
  });
});
