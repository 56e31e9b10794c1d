import { resetIdentity } from '../../functions/identity/context';
import { call, startTestPlatform, type TestPlatform } from '../support/platform';
import { ACS, SP, signedResponse, trusted } from '../support/saml-idp';

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
      VIGIL_SAML_ROLE_MAP: JSON.stringify({ 'g-auditors': 'auditor' }),
    });
    resetIdentity();
  });
  afterAll(async () => {
    process.env = saved;
    resetIdentity();
    await t.stop();
  });

  const post = (response: string) =>
    call(t.platform.httpUrl, 'POST', '/v1/auth/saml', {
      body: new URLSearchParams({ SAMLResponse: response }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });

  it('provisions the person and asks for Vigil TOTP, since SAML carries no MFA claim', async () => {
    const response = signedResponse();
    const res = await post(response);
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('mfa_enrolment_required');

    const replay = await post(response);
    expect(replay.status).toBe(401);
  });

  it('refuses an assertion for another audience', async () => {
    const res = await post(signedResponse({ audience: 'https://other.example.test' }));
    expect(res.status).toBe(401);
  });
});
