import {
  generateKeyPairSync,
  randomUUID,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import {
  CLOCK_SKEW_MS,
  DEFAULT_GROUPS_ATTRIBUTE,
  SamlVerifier,
  samlConfigFrom,
  type ReplayGuard,
  type SamlConfig,
} from '../../functions/identity/saml';

const IDP = 'https://sts.example.test/tenant-1/';
const SP = 'https://vigil.example.test/saml';
const ACS = 'https://vigil.example.test/v1/auth/saml';
const GROUPS = DEFAULT_GROUPS_ATTRIBUTE;
const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const NAME = 'http://schemas.microsoft.com/identity/claims/displayname';
const PASSWORD_PROTECTED_TRANSPORT =
  'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport';
const MINUTE = 60_000;

// A self-signed X.509 certificate, DER-encoded by hand: node:crypto parses certificates but
// cannot issue one, and no certificate builder is installed.
function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const size = [];
  for (let rest = body.length; rest > 0; rest >>= 8) size.unshift(rest & 0xff);
  const length = body.length < 0x80 ? [body.length] : [0x80 | size.length, ...size];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let high = arc >> 7; high > 0; high >>= 7) groups.unshift(0x80 | (high & 0x7f));
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
}

const utcTime = (at: Date) =>
  der(0x17, Buffer.from(`${at.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));

function selfSignedCertificate(privateKey: KeyObject, publicKey: KeyObject, cn: string): string {
  const sha256WithRsa = der(0x30, oid('1.2.840.113549.1.1.11'), der(0x05));
  const name = der(0x30, der(0x31, der(0x30, oid('2.5.4.3'), der(0x0c, Buffer.from(cn)))));
  const validity = der(
    0x30,
    utcTime(new Date(Date.now() - MINUTE)),
    utcTime(new Date(Date.now() + 60 * MINUTE)),
  );
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const tbs = der(0x30, der(0x02, Buffer.from([1])), sha256WithRsa, name, validity, name, spki);
  const signature = der(0x03, Buffer.from([0]), sign('sha256', tbs, privateKey));
  const base64 = der(0x30, tbs, sha256WithRsa, signature).toString('base64');
  const lines = base64.match(/.{1,64}/g)?.join('\n');
  return `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`;
}

function identityProvider(cn: string) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const certificate = selfSignedCertificate(privateKey, publicKey, cn);
  return {
    certificate,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

const trusted = identityProvider('idp.example.test');
const impostor = identityProvider('idp.example.test');

interface AssertionOptions {
  audience?: string;
  recipient?: string;
  notBefore?: Date;
  notOnOrAfter?: Date;
  groups?: string[];
}

/** A Web SSO response from the test IdP, valid now (by the real clock) unless told otherwise. */
function responseXml(options: AssertionOptions = {}): string {
  const now = Date.now();
  const {
    audience = SP,
    recipient = ACS,
    notBefore = new Date(now - 5_000),
    notOnOrAfter = new Date(now + 5 * MINUTE),
    groups = ['g-auditors', 'g-marketing'],
  } = options;
  const [at, from, until] = [new Date(now - 5_000), notBefore, notOnOrAfter].map((instant) =>
    instant.toISOString(),
  );
  const value = (text: string) => `<saml:AttributeValue>${text}</saml:AttributeValue>`;
  const attribute = (name: string, texts: string[]) =>
    `<saml:Attribute Name="${name}">${texts.map(value).join('')}</saml:Attribute>`;
  return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    ID="_r${randomUUID()}" Version="2.0" IssueInstant="${at}" Destination="${ACS}">
  <saml:Issuer>${IDP}</saml:Issuer>
  <samlp:Status>
    <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>
  </samlp:Status>
  <saml:Assertion ID="_a${randomUUID()}" Version="2.0" IssueInstant="${at}">
    <saml:Issuer>${IDP}</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
        >n-7f3a</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData NotOnOrAfter="${until}" Recipient="${recipient}"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="${from}" NotOnOrAfter="${until}">
      <saml:AudienceRestriction>
        <saml:Audience>${audience}</saml:Audience>
      </saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="${at}" SessionIndex="_s1">
      <saml:AuthnContext>
        <saml:AuthnContextClassRef>${PASSWORD_PROTECTED_TRANSPORT}</saml:AuthnContextClassRef>
      </saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>
      ${attribute(GROUPS, groups)}
      ${attribute(EMAIL, ['dana@example.test'])}
      ${attribute(NAME, ['Dana Chen'])}
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>`;
}

/** An enveloped RSA-SHA256 signature over one element, placed after its Issuer. */
function signElement(xml: string, element: 'Assertion' | 'Response', signer = trusted): string {
  const signature = new SignedXml({
    privateKey: signer.privateKeyPem,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  });
  signature.addReference({
    xpath: `//*[local-name(.)='${element}']`,
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ],
  });
  signature.computeSignature(xml, {
    prefix: 'ds',
    location: {
      reference: `//*[local-name(.)='${element}']/*[local-name(.)='Issuer']`,
      action: 'after',
    },
  });
  return signature.getSignedXml();
}

const signAssertion = (xml: string, signer = trusted) => signElement(xml, 'Assertion', signer);
const posted = (xml: string) => Buffer.from(xml).toString('base64');
const signedResponse = (options?: AssertionOptions) => posted(signAssertion(responseXml(options)));

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
