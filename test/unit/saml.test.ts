import { X509Certificate } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import {
  CLOCK_SKEW_MS,
  MAX_IDENTIFIER_LENGTH,
  MAX_SAML_ATTRIBUTES,
  MAX_SAML_ATTRIBUTES_PER_ELEMENT,
  MAX_SAML_DEPTH,
  MAX_SAML_ELEMENTS,
  SamlVerifier,
  samlConfigFrom,
  type ReplayGuard,
  type RequestLedger,
  type SamlConfig,
  type SamlGuards,
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

/** IdP-initiated sign-in allowed, so these tests can post responses nobody asked for. */
const config: SamlConfig = {
  entryPoint: 'https://sts.example.test/tenant-1/saml2',
  issuer: SP,
  audience: SP,
  callbackUrl: ACS,
  idpCert: trusted.certificate,
  idpIssuer: IDP,
  allowUnsolicited: true,
  groupsAttribute: GROUPS,
  roleMap: { 'g-auditors': 'auditor', 'g-nurses': 'nurse' },
};

/** What the caller's conditional writes do: the first use of an id wins. */
function memoryGuards() {
  const seen = new Map<string, Date>();
  const replay: ReplayGuard = async (id, until) => {
    if (seen.has(id)) return false;
    seen.set(id, until);
    return true;
  };
  const sent = new Map<string, { issuedAt: string; answered: boolean }>();
  const requests: RequestLedger = {
    save: async (id, issuedAt) => {
      sent.set(id, { issuedAt, answered: false });
    },
    issuedAt: async (id) => {
      const request = sent.get(id);
      return request && !request.answered ? request.issuedAt : undefined;
    },
    answer: async (id) => {
      const request = sent.get(id);
      if (!request || request.answered) return false;
      request.answered = true;
      return true;
    },
  };
  const guards: SamlGuards = { replay, requests };
  return { guards, seen, sent };
}

const refusal = (status: 401 | 503, reason: string) =>
  expect.objectContaining({ name: 'SamlError', status, reason });

describe('SamlVerifier', () => {
  it('returns the identity of a valid signed assertion, with mapped roles', async () => {
    const { guards } = memoryGuards();

    const identity = await new SamlVerifier(config, guards).verifyPostResponse(signedResponse());

    expect(identity).toEqual({
      issuer: IDP,
      subject: 'n-7f3a',
      email: 'dana@example.test',
      emailVerified: true,
      name: 'Dana Chen',
      roles: ['auditor'],
    });
  });

  it('remembers the assertion id until it can no longer be accepted', async () => {
    const { guards, seen } = memoryGuards();
    const notOnOrAfter = new Date(Date.now() + 5 * MINUTE);

    await new SamlVerifier(config, guards).verifyPostResponse(signedResponse({ notOnOrAfter }));

    expect([...seen.values()]).toEqual([new Date(notOnOrAfter.getTime() + CLOCK_SKEW_MS)]);
    expect([...seen.keys()][0]).toMatch(/^_a/);
  });

  it('refuses the same assertion a second time as replayed', async () => {
    const verifier = new SamlVerifier(config, memoryGuards().guards);
    const response = signedResponse();
    await verifier.verifyPostResponse(response);

    await expect(verifier.verifyPostResponse(response)).rejects.toEqual(refusal(401, 'replayed'));
  });

  it('refuses an unsigned assertion', async () => {
    const verifier = new SamlVerifier(config, memoryGuards().guards);

    await expect(verifier.verifyPostResponse(posted(responseXml()))).rejects.toEqual(
      refusal(401, 'signature'),
    );
  });

  it('refuses an unsigned assertion even inside a signed response', async () => {
    const response = posted(signElement(responseXml(), 'Response'));

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'signature'));
  });

  it('refuses an assertion signed by another key', async () => {
    const forged = posted(signAssertion(responseXml(), impostor));

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(forged),
    ).rejects.toEqual(refusal(401, 'signature'));
  });

  it('refuses an assertion changed after signing', async () => {
    const tampered = signAssertion(responseXml()).replace('g-marketing', 'g-nurses');

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(posted(tampered)),
    ).rejects.toEqual(refusal(401, 'signature'));
  });

  it('refuses an expired assertion', async () => {
    const response = signedResponse({
      notBefore: new Date(Date.now() - 20 * MINUTE),
      notOnOrAfter: new Date(Date.now() - 10 * MINUTE),
    });

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'expired'));
  });

  it('refuses an assertion that is not valid yet', async () => {
    const response = signedResponse({ notBefore: new Date(Date.now() + 10 * MINUTE) });

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'not_yet_valid'));
  });

  it('checks the validity window with the injected clock', async () => {
    const anHourLater = () => new Date(Date.now() + 60 * MINUTE);
    const verifier = new SamlVerifier(config, memoryGuards().guards, anHourLater);

    await expect(verifier.verifyPostResponse(signedResponse())).rejects.toEqual(
      refusal(401, 'expired'),
    );
  });

  it('refuses an assertion for another audience', async () => {
    const response = signedResponse({ audience: 'https://billing.example.test/saml' });

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'audience'));
  });

  it('refuses an assertion addressed to another consumer service', async () => {
    const response = signedResponse({ recipient: 'https://billing.example.test/acs' });

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'recipient'));
  });

  it('answers 503 when the replay store fails, and signs nobody in', async () => {
    const failing: ReplayGuard = () => Promise.reject(new Error('store unavailable'));
    const guards = { ...memoryGuards().guards, replay: failing };

    await expect(
      new SamlVerifier(config, guards).verifyPostResponse(signedResponse()),
    ).rejects.toEqual(refusal(503, 'unavailable'));
  });

  it('answers 503 when SAML is not configured', async () => {
    await expect(
      new SamlVerifier(undefined, memoryGuards().guards).verifyPostResponse(signedResponse()),
    ).rejects.toEqual(refusal(503, 'not_configured'));
  });

  it('refuses a NameID longer than SAML allows a persistent identifier', async () => {
    const verifier = new SamlVerifier(config, memoryGuards().guards);

    await expect(
      verifier.verifyPostResponse(
        signedResponse({ nameId: 'n'.repeat(MAX_IDENTIFIER_LENGTH + 1) }),
      ),
    ).rejects.toEqual(refusal(401, 'claims'));
    await expect(
      verifier.verifyPostResponse(signedResponse({ nameId: 'n'.repeat(MAX_IDENTIFIER_LENGTH) })),
    ).resolves.toEqual(expect.objectContaining({ subject: 'n'.repeat(MAX_IDENTIFIER_LENGTH) }));
  });

  it('takes the subject only from NameID, never from an attribute of that name', async () => {
    const standIn =
      '<saml:Attribute Name="nameID"><saml:AttributeValue>n-someone-else</saml:AttributeValue></saml:Attribute>';
    const response = signedResponse({ nameId: null, extraAttributes: standIn });

    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(response),
    ).rejects.toEqual(refusal(401, 'claims'));
  });

  it('answers 503 when the sign-in requests cannot be read, and signs nobody in', async () => {
    const guards = memoryGuards().guards;
    guards.requests.issuedAt = () => Promise.reject(new Error('store unavailable'));
    const response = signedResponse({ inResponseTo: '_r-1' });

    await expect(
      new SamlVerifier(config, guards).verifyPostResponse(response, '_r-1'),
    ).rejects.toEqual(refusal(503, 'unavailable'));
  });

  it('refuses a response that is not XML', async () => {
    await expect(
      new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(posted('not xml')),
    ).rejects.toEqual(refusal(401, 'malformed'));
  });
});

describe('SamlVerifier, documents no identity provider sends', () => {
  /** What the shape check must refuse before signature checking would spend time on it. */
  const verify = (xml: string) =>
    new SamlVerifier(config, memoryGuards().guards).verifyPostResponse(posted(xml));

  it('still accepts a signed response with quoted ">" and self-closing tags', async () => {
    const quoted = '<saml:Attribute Name="a>b"><saml:AttributeValue/></saml:Attribute>';

    await expect(verify(signAssertion(responseXml({ extraAttributes: quoted })))).resolves.toEqual(
      expect.objectContaining({ subject: 'n-7f3a' }),
    );
  });

  it('does not let a comment full of closing tags hide nesting', async () => {
    const depth = MAX_SAML_DEPTH;
    const hidden = `<!--${'</x>'.repeat(depth)}-->`;
    const deep = `${'<x>'.repeat(depth)}${'</x>'.repeat(depth)}`;
    const xml = signAssertion(responseXml({ extraAttributes: deep })).replace(
      '<samlp:Response',
      `${hidden}<samlp:Response`,
    );

    await expect(verify(xml)).rejects.toEqual(refusal(401, 'malformed'));
  });

  it(`refuses an element with more than ${MAX_SAML_ATTRIBUTES_PER_ELEMENT} attributes`, async () => {
    const names = Array.from({ length: MAX_SAML_ATTRIBUTES_PER_ELEMENT + 1 }, (_, i) => i);
    const crowded = `<x ${names.map((i) => `xmlns:n${i}="urn:n${i}"`).join(' ')}/>`;

    await expect(verify(responseXml({ extraAttributes: crowded }))).rejects.toEqual(
      refusal(401, 'malformed'),
    );
  });

  it(`refuses more than ${MAX_SAML_ATTRIBUTES} attributes in all`, async () => {
    // 30 attributes on each of 67 elements: every element and the element count are in bounds.
    const thirty = `<x ${Array.from({ length: 30 }, (_, i) => `a${i}="v"`).join(' ')}/>`;
    const count = Math.ceil(MAX_SAML_ATTRIBUTES / 30);

    await expect(verify(responseXml({ extraAttributes: thirty.repeat(count) }))).rejects.toEqual(
      refusal(401, 'malformed'),
    );
    await expect(
      verify(responseXml({ extraAttributes: thirty.repeat(count - 3) })),
    ).rejects.toEqual(refusal(401, 'signature'));
  });

  it('refuses a document type declaration, where entity expansion lives', async () => {
    const xml = `<!DOCTYPE r [<!ENTITY a "aaaa">]>${signAssertion(responseXml())}`;

    await expect(verify(xml)).rejects.toEqual(refusal(401, 'malformed'));
  });

  it(`refuses nesting deeper than ${MAX_SAML_DEPTH}, signed or not`, async () => {
    const depth = MAX_SAML_DEPTH;
    const deep = `${'<x>'.repeat(depth)}${'</x>'.repeat(depth)}`;

    await expect(verify(signAssertion(responseXml({ extraAttributes: deep })))).rejects.toEqual(
      refusal(401, 'malformed'),
    );
    const deeper = `${'<x>'.repeat(50_000)}${'</x>'.repeat(50_000)}`;
    await expect(verify(responseXml({ extraAttributes: deeper }))).rejects.toEqual(
      refusal(401, 'malformed'),
    );
  });

  it(`refuses more than ${MAX_SAML_ELEMENTS} elements`, async () => {
    const wide = '<x/>'.repeat(MAX_SAML_ELEMENTS);

    // Unsigned: refused as malformed shows the shape was judged before the signature.
    await expect(verify(responseXml({ extraAttributes: wide }))).rejects.toEqual(
      refusal(401, 'malformed'),
    );
  });
});

describe('SamlVerifier, signing in from Vigil (the default)', () => {
  const strict: SamlConfig = { ...config, allowUnsolicited: false };

  /** Starts a sign-in as the login route does; the browser keeps the request id. */
  async function started() {
    const { guards, sent } = memoryGuards();
    const verifier = new SamlVerifier(strict, guards);
    const { url, requestId } = await verifier.loginRedirect();
    return { verifier, url, requestId, sent };
  }

  it('sends the browser to the identity provider with an AuthnRequest it remembers', async () => {
    const { url, requestId, sent } = await started();

    const target = new URL(url);
    const request = inflateRawSync(
      Buffer.from(target.searchParams.get('SAMLRequest') ?? '', 'base64'),
    ).toString();

    expect(`${target.origin}${target.pathname}`).toBe(strict.entryPoint);
    expect(request).toContain(`ID="${requestId}"`);
    expect(request).toContain(
      `<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${SP}</saml:Issuer>`,
    );
    expect(sent.get(requestId)).toEqual({ issuedAt: expect.any(String), answered: false });
  });

  it('accepts the answer to the sign-in this browser started, once', async () => {
    const { verifier, requestId, sent } = await started();

    const identity = await verifier.verifyPostResponse(
      signedResponse({ inResponseTo: requestId }),
      requestId,
    );

    expect(identity.subject).toBe('n-7f3a');
    expect(sent.get(requestId)?.answered).toBe(true);
    await expect(
      verifier.verifyPostResponse(signedResponse({ inResponseTo: requestId }), requestId),
    ).rejects.toEqual(refusal(401, 'unknown_request'));
  });

  it('refuses an expired answer as expired', async () => {
    const { verifier, requestId } = await started();
    const response = signedResponse({
      inResponseTo: requestId,
      notBefore: new Date(Date.now() - 20 * MINUTE),
      notOnOrAfter: new Date(Date.now() - 10 * MINUTE),
    });

    await expect(verifier.verifyPostResponse(response, requestId)).rejects.toEqual(
      refusal(401, 'expired'),
    );
  });

  it('refuses a response nobody asked for', async () => {
    const { verifier } = await started();

    await expect(verifier.verifyPostResponse(signedResponse())).rejects.toEqual(
      refusal(401, 'unsolicited'),
    );
  });

  it("refuses the answer to another browser's sign-in", async () => {
    const mine = await started();
    const theirs = await mine.verifier.loginRedirect();

    await expect(
      mine.verifier.verifyPostResponse(
        signedResponse({ inResponseTo: theirs.requestId }),
        mine.requestId,
      ),
    ).rejects.toEqual(refusal(401, 'request_mismatch'));
  });

  it('refuses the answer to a request it never sent, even when the cookie agrees', async () => {
    const { verifier } = await started();

    await expect(
      verifier.verifyPostResponse(signedResponse({ inResponseTo: '_forged' }), '_forged'),
    ).rejects.toEqual(refusal(401, 'unknown_request'));
  });

  it('reads the request from the signed confirmation, not the unsigned envelope', async () => {
    const { verifier, requestId } = await started();
    // An IdP-initiated assertion rewrapped in a response that claims to answer our request.
    const rewrapped = signedResponse({ inResponseTo: requestId, confirmationInResponseTo: null });

    await expect(verifier.verifyPostResponse(rewrapped, requestId)).rejects.toEqual(
      refusal(401, 'unsolicited'),
    );
  });

  it('refuses an assertion from another identity provider, even signed with the trusted key', async () => {
    const { verifier, requestId } = await started();
    const response = signedResponse({
      inResponseTo: requestId,
      issuer: 'https://sts.example.test/tenant-2/',
    });

    await expect(verifier.verifyPostResponse(response, requestId)).rejects.toEqual(
      refusal(401, 'issuer'),
    );
  });

  it('refuses an assertion signed with SHA-1', async () => {
    const { verifier, requestId } = await started();
    const xml = responseXml({ inResponseTo: requestId });
    const response = posted(signElement(xml, 'Assertion', trusted, 'sha1'));

    await expect(verifier.verifyPostResponse(response, requestId)).rejects.toEqual(
      refusal(401, 'weak_algorithm'),
    );
  });
});

describe('samlConfigFrom', () => {
  const env = {
    VIGIL_SAML_ENTRY_POINT: config.entryPoint,
    VIGIL_SAML_ISSUER: SP,
    VIGIL_SAML_AUDIENCE: SP,
    VIGIL_SAML_CALLBACK_URL: ACS,
    VIGIL_SAML_IDP_CERT: trusted.certificate.trim().replace(/\n/g, '\\n'),
    VIGIL_SAML_IDP_ISSUER: IDP,
    VIGIL_SAML_ROLE_MAP: '{"g-auditors":"auditor"}',
  };

  it('is undefined when SAML is not configured', () => {
    expect(samlConfigFrom({})).toBeUndefined();
  });

  it('reads the settings, accepting a certificate with escaped newlines', () => {
    const parsed = samlConfigFrom(env);

    expect(parsed).toMatchObject({
      callbackUrl: ACS,
      groupsAttribute: GROUPS,
      idpIssuer: IDP,
      allowUnsolicited: false,
    });
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
    ['a missing IdP entity ID', { ...env, VIGIL_SAML_IDP_ISSUER: '' }, 'VIGIL_SAML_IDP_ISSUER'],
    [
      'an unsolicited switch that is not true or false',
      { ...env, VIGIL_SAML_ALLOW_UNSOLICITED: 'yes' },
      'VIGIL_SAML_ALLOW_UNSOLICITED',
    ],
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
