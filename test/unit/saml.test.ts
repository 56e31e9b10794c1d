import { X509Certificate } from 'node:crypto';
import {
  CLOCK_SKEW_MS,
  SamlVerifier,
  samlConfigFrom,
  type ReplayGuard,
  type SamlConfig,
} from '../../functions/identity/saml';
import {
  IDP,
  SP,
  ACS,
  GROUPS,
  MINUTE,
  trusted,
  impostor,
  responseXml,
  signElement,
  signAssertion,
  posted,
  signedResponse,
} from '../support/saml-idp';

const config: SamlConfig = {
  entryPoint: 'https://sts.example.test/tenant-1/saml2',
  issuer: SP,
  audience: SP,
  callbackUrl: ACS,
  idpCert: trusted.certificate,
  groupsAttribute: GROUPS,
  roleMap: { 'g-auditors': 'auditor', 'g-nurses': 'nurse' },
};

/** What the caller's conditional write does: the first use of an id wins. */
function memoryGuard() {
  const seen = new Map<string, Date>();
  const guard: ReplayGuard = async (id, until) => {
    if (seen.has(id)) return false;
    seen.set(id, until);
    return true;
  };
  return { guard, seen };
}

const refusal = (status: 401 | 503, reason: string) =>
  expect.objectContaining({ name: 'SamlError', status, reason });

describe('SamlVerifier', () => {
  it('returns the identity of a valid signed assertion, with mapped roles', async () => {
    const { guard } = memoryGuard();

    const identity = await new SamlVerifier(config, guard).verifyPostResponse(signedResponse());

    expect(identity).toEqual({
      issuer: IDP,
      subject: 'n-7f3a',
      email: 'dana@example.test',
      name: 'Dana Chen',
      roles: ['auditor'],
    });
  });

  it('remembers the assertion id until it can no longer be accepted', async () => {
    const { guard, seen } = memoryGuard();
    const notOnOrAfter = new Date(Date.now() + 5 * MINUTE);

    await new SamlVerifier(config, guard).verifyPostResponse(signedResponse({ notOnOrAfter }));

    expect([...seen.values()]).toEqual([new Date(notOnOrAfter.getTime() + CLOCK_SKEW_MS)]);
    expect([...seen.keys()][0]).toMatch(/^_a/);
  });

  it('refuses the same assertion a second time as replayed', async () => {
    const verifier = new SamlVerifier(config, memoryGuard().guard);
    const response = signedResponse();
    await verifier.verifyPostResponse(response);

    await expect(verifier.verifyPostResponse(response)).rejects.toEqual(refusal(401, 'replayed'));
  });

  it('refuses an unsigned assertion', async () => {
    const verifier = new SamlVerifier(config, memoryGuard().guard);

    await expect(verifier.verifyPostResponse(posted(responseXml()))).rejects.toEqual(
      refusal(401, 'signature'),
    );
  });

  it('refuses an unsigned assertion even inside a signed response', async () => {
    const response = posted(signElement(responseXml(), 'Response'));

    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'signature'));
  });

  it('refuses an assertion signed by another key', async () => {
    const forged = posted(signAssertion(responseXml(), impostor));

    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(forged),
    ).rejects.toEqual(refusal(401, 'signature'));
  });

  it('refuses an assertion changed after signing', async () => {
    const tampered = signAssertion(responseXml()).replace('g-marketing', 'g-nurses');

    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(posted(tampered)),
    ).rejects.toEqual(refusal(401, 'signature'));
  });

  it('refuses an expired assertion', async () => {
    const response = signedResponse({
      notBefore: new Date(Date.now() - 20 * MINUTE),
      notOnOrAfter: new Date(Date.now() - 10 * MINUTE),
    });

    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'expired'));
  });

  it('refuses an assertion that is not valid yet', async () => {
    const response = signedResponse({ notBefore: new Date(Date.now() + 10 * MINUTE) });

    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'not_yet_valid'));
  });

  it('checks the validity window with the injected clock', async () => {
    const anHourLater = () => new Date(Date.now() + 60 * MINUTE);
    const verifier = new SamlVerifier(config, memoryGuard().guard, anHourLater);

    await expect(verifier.verifyPostResponse(signedResponse())).rejects.toEqual(
      refusal(401, 'expired'),
    );
  });

  it('refuses an assertion for another audience', async () => {
    const response = signedResponse({ audience: 'https://billing.example.test/saml' });

    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'audience'));
  });

  it('refuses an assertion addressed to another consumer service', async () => {
    const response = signedResponse({ recipient: 'https://billing.example.test/acs' });

    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'recipient'));
  });

  it('answers 503 when the replay store fails, and signs nobody in', async () => {
    const failing: ReplayGuard = () => Promise.reject(new Error('store unavailable'));

    await expect(
      new SamlVerifier(config, failing).verifyPostResponse(signedResponse()),
    ).rejects.toEqual(refusal(503, 'unavailable'));
  });

  it('answers 503 when SAML is not configured', async () => {
    await expect(
      new SamlVerifier(undefined, memoryGuard().guard).verifyPostResponse(signedResponse()),
    ).rejects.toEqual(refusal(503, 'not_configured'));
  });

  it('refuses a response that is not XML', async () => {
    await expect(
      new SamlVerifier(config, memoryGuard().guard).verifyPostResponse(posted('not xml')),
    ).rejects.toEqual(refusal(401, 'malformed'));
  });
});

describe('samlConfigFrom', () => {
  const env = {
    VIGIL_SAML_ENTRY_POINT: config.entryPoint,
    VIGIL_SAML_ISSUER: SP,
    VIGIL_SAML_AUDIENCE: SP,
    VIGIL_SAML_CALLBACK_URL: ACS,
    VIGIL_SAML_IDP_CERT: trusted.certificate.trim().replace(/\n/g, '\\n'),
    VIGIL_SAML_ROLE_MAP: '{"g-auditors":"auditor"}',
  };

  it('is undefined when SAML is not configured', () => {
    expect(samlConfigFrom({})).toBeUndefined();
  });

  it('reads the settings, accepting a certificate with escaped newlines', () => {
    const parsed = samlConfigFrom(env);

    expect(parsed).toMatchObject({ callbackUrl: ACS, groupsAttribute: GROUPS });
    expect(parsed?.roleMap).toEqual({ 'g-auditors': 'auditor' });
    expect(new X509Certificate(parsed?.idpCert ?? '').subject).toBe('CN=idp.example.test');
  });

  it.each([
    ['a missing callback URL', { ...env, VIGIL_SAML_CALLBACK_URL: '' }, 'VIGIL_SAML_CALLBACK_URL'],
    [
      'a certificate that is not one',
      { ...env, VIGIL_SAML_IDP_CERT: 'MIIB' },
      'VIGIL_SAML_IDP_CERT',
    ],
    ['an unknown role', { ...env, VIGIL_SAML_ROLE_MAP: '{"g":"root"}' }, 'VIGIL_SAML_ROLE_MAP'],
    [
      'a consumer service over plain http',
      { ...env, VIGIL_SAML_CALLBACK_URL: 'http://vigil.example.test/acs' },
      'VIGIL_SAML_CALLBACK_URL',
    ],
  ])('names the variable for %s', (_, partial, variable) => {
    expect(() => samlConfigFrom(partial)).toThrow(
      expect.objectContaining({
        name: 'FederationConfigError',
        message: expect.stringContaining(variable),
      }),
    );
  });
});
