/** A test SAML identity provider: its certificate, and Web SSO responses it signs. */
import {
  generateKeyPairSync,
  randomUUID,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { DEFAULT_GROUPS_ATTRIBUTE } from '../../functions/identity/saml';

export const IDP = 'https://sts.example.test/tenant-1/';
export const SP = 'https://vigil.example.test/saml';
export const ACS = 'https://vigil.example.test/v1/auth/saml';
export const GROUPS = DEFAULT_GROUPS_ATTRIBUTE;
export const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
export const NAME = 'http://schemas.microsoft.com/identity/claims/displayname';
export const PASSWORD_PROTECTED_TRANSPORT =
  'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport';
export const MINUTE = 60_000;

// A self-signed X.509 certificate, DER-encoded by hand: node:crypto parses certificates but
// cannot issue one, and no certificate builder is installed.
export function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const size = [];
  for (let rest = body.length; rest > 0; rest >>= 8) size.unshift(rest & 0xff);
  const length = body.length < 0x80 ? [body.length] : [0x80 | size.length, ...size];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

export function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let high = arc >> 7; high > 0; high >>= 7) groups.unshift(0x80 | (high & 0x7f));
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
}

export const utcTime = (at: Date) =>
  der(0x17, Buffer.from(`${at.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));

export function selfSignedCertificate(
  privateKey: KeyObject,
  publicKey: KeyObject,
  cn: string,
): string {
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

export function identityProvider(cn: string) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const certificate = selfSignedCertificate(privateKey, publicKey, cn);
  return {
    certificate,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export const trusted = identityProvider('idp.example.test');
export const impostor = identityProvider('idp.example.test');

export interface AssertionOptions {
  audience?: string;
  recipient?: string;
  notBefore?: Date;
  notOnOrAfter?: Date;
  groups?: string[];
  /** The entity that issues the assertion. */
  issuer?: string;
  /** The request answered, named on the Response and in the signed confirmation. */
  inResponseTo?: string;
  /** The request the signed confirmation names, when it differs; null leaves it out. */
  confirmationInResponseTo?: string | null;
  /** null leaves the NameID element out. */
  nameId?: string | null;
  /** Raw XML placed inside the assertion's attribute statement. */
  extraAttributes?: string;
}

/** A Web SSO response from the test IdP, valid now (by the real clock) unless told otherwise. */
export function responseXml(options: AssertionOptions = {}): string {
  const now = Date.now();
  const {
    audience = SP,
    recipient = ACS,
    notBefore = new Date(now - 5_000),
    notOnOrAfter = new Date(now + 5 * MINUTE),
    groups = ['g-auditors', 'g-marketing'],
    issuer = IDP,
    inResponseTo,
    confirmationInResponseTo = inResponseTo,
    nameId = 'n-7f3a',
    extraAttributes = '',
  } = options;
  const answering = (id: string | null | undefined) => (id ? ` InResponseTo="${id}"` : '');
  const [at, from, until] = [new Date(now - 5_000), notBefore, notOnOrAfter].map((instant) =>
    instant.toISOString(),
  );
  const value = (text: string) => `<saml:AttributeValue>${text}</saml:AttributeValue>`;
  const attribute = (name: string, texts: string[]) =>
    `<saml:Attribute Name="${name}">${texts.map(value).join('')}</saml:Attribute>`;
  return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    ID="_r${randomUUID()}" Version="2.0" IssueInstant="${at}" Destination="${ACS}"${answering(inResponseTo)}>
  <saml:Issuer>${issuer}</saml:Issuer>
  <samlp:Status>
    <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>
  </samlp:Status>
  <saml:Assertion ID="_a${randomUUID()}" Version="2.0" IssueInstant="${at}">
    <saml:Issuer>${issuer}</saml:Issuer>
    <saml:Subject>
      ${nameId === null ? '' : `<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${nameId}</saml:NameID>`}
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData NotOnOrAfter="${until}" Recipient="${recipient}"${answering(confirmationInResponseTo)}/>
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
      ${attribute(NAME, ['Dana Chen'])}${extraAttributes}
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>`;
}

const ALGORITHMS = {
  sha256: {
    signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    digest: 'http://www.w3.org/2001/04/xmlenc#sha256',
  },
  sha1: {
    signature: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
    digest: 'http://www.w3.org/2000/09/xmldsig#sha1',
  },
};

/** An enveloped RSA signature (SHA-256 unless told) over one element, after its Issuer. */
export function signElement(
  xml: string,
  element: 'Assertion' | 'Response',
  signer = trusted,
  hash: keyof typeof ALGORITHMS = 'sha256',
): string {
  const signature = new SignedXml({
    privateKey: signer.privateKeyPem,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
    signatureAlgorithm: ALGORITHMS[hash].signature,
  });
  signature.addReference({
    xpath: `//*[local-name(.)='${element}']`,
    digestAlgorithm: ALGORITHMS[hash].digest,
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

export const signAssertion = (xml: string, signer = trusted) =>
  signElement(xml, 'Assertion', signer);
export const posted = (xml: string) => Buffer.from(xml).toString('base64');
export const signedResponse = (options?: AssertionOptions) =>
  posted(signAssertion(responseXml(options)));
