import { X509Certificate, randomBytes } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import {
  SAML,
  SamlStatusError,
  ValidateInResponseTo,
  type CacheProvider,
  type Profile,
  type SamlConfig as NodeSamlOptions,
} from '@node-saml/node-saml';
import type { FederatedIdentity, PersonRole } from './model';
import {
  CLOCK_LEEWAY_SECONDS,
  FederationConfigError,
  mapRoles,
  parseRoleMap,
  plainEmail,
  readAllOrNone,
  requireTrustedUrl,
  trueOrFalse,
} from './oidc';

/**
 * Verification of SAML 2.0 Web Browser SSO responses (SAML Profiles section 4.1) posted to our
 * assertion consumer service, and the mapping of their attributes onto Vigil roles.
 * Provisioning and sessions belong to the caller, which keys accounts on (issuer, NameID).
 */

/** The same drift allowance as for OIDC tokens, on every NotBefore and NotOnOrAfter. */
export const CLOCK_SKEW_MS = CLOCK_LEEWAY_SECONDS * 1000;

/** Microsoft Entra ID's group claim, the most common source of groups. */
export const DEFAULT_GROUPS_ATTRIBUTE =
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';

/** Responses carrying hundreds of groups stay well below this; more is refused unparsed. */
export const MAX_SAML_RESPONSE_LENGTH = 512 * 1024;

/**
 * Bounds on the document's shape, checked before any XML library sees it, so that a post
 * nobody signed costs little: signature checking and parsing cost some 0.3 ms per element,
 * more with many namespace declarations (at these bounds, about 300 ms at worst on one core).
 * A real response has a few hundred elements at most (Entra ID sends up to 150 groups, then
 * a link instead), nested fewer than 15 deep, with a handful of attributes on each.
 */
export const MAX_SAML_ELEMENTS = 1_000;
export const MAX_SAML_DEPTH = 32;
export const MAX_SAML_ATTRIBUTES_PER_ELEMENT = 32;
export const MAX_SAML_ATTRIBUTES = 2_000;

/** SAML Core 8.3.7 caps persistent NameIDs at 256 characters; ids get the same bound. */
export const MAX_IDENTIFIER_LENGTH = 256;

/** How long a sign-in we started may take at the identity provider. */
export const REQUEST_TTL_MS = 10 * 60_000;

/** Signature and digest algorithms built on SHA-1, whose collisions are practical. */
const WEAK_ALGORITHM = /sha1$/i;
const XMLDSIG = 'http://www.w3.org/2000/09/xmldsig#';

/** SAML Core 3.0 section 3.1: the only confirmation method the Web SSO profile allows. */
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/** Where providers put the email, most specific first: Entra ID / AD FS, the LDAP OID, then plain names. */
const EMAIL_ATTRIBUTES = [
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  'urn:oid:0.9.2342.19200300.100.1.3',
  'email',
  'mail',
];
const EMAIL_NAME_ID = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const NAME_ATTRIBUTES = [
  'http://schemas.microsoft.com/identity/claims/displayname',
  'urn:oid:2.16.840.1.113730.3.1.241',
  'displayName',
];

export interface SamlConfig {
  entryPoint: string;
  /** Our entity ID, as the identity provider knows us. */
  issuer: string;
  audience: string;
  /** Our assertion consumer service URL; assertions must name it as Recipient. */
  callbackUrl: string;
  idpCert: string;
  /** The identity provider's entity ID; assertions issued by any other are refused. */
  idpIssuer: string;
  /**
   * Accept responses no sign-in of ours asked for (IdP-initiated SSO). Off by default: such a
   * response can be posted into anyone's browser to sign them in as someone else.
   */
  allowUnsolicited: boolean;
  groupsAttribute: string;
  roleMap: Record<string, PersonRole>;
}

/** A SAML email is a signed attribute from the hospital's directory: taken as verified. */
export type SamlIdentity = FederatedIdentity;

export type SamlReason =
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'audience'
  | 'recipient'
  | 'replayed'
  | 'issuer'
  | 'weak_algorithm'
  | 'unsolicited'
  | 'unknown_request'
  | 'request_mismatch'
  | 'idp_status'
  | 'malformed'
  | 'claims'
  | 'not_configured'
  | 'unavailable';

/** 401 for a response we refuse; 503 when we cannot decide, which is never taken as success. */
export class SamlError extends Error {
  constructor(
    readonly status: 401 | 503,
    readonly reason: SamlReason,
    options?: { cause?: unknown },
  ) {
    super(
      status === 401 ? `SAML response refused: ${reason}` : `sign-in unavailable: ${reason}`,
      options,
    );
    this.name = 'SamlError';
  }
}

/**
 * Records an assertion id until `notOnOrAfter`; false when it was recorded before. The caller
 * backs it with a conditional write so two servers cannot both accept one assertion.
 */
export type ReplayGuard = (assertionId: string, notOnOrAfter: Date) => Promise<boolean>;

/**
 * The sign-in requests we sent, by id: recorded when the browser is sent to the identity
 * provider, answered once. The caller backs `answer` with a conditional write.
 */
export interface RequestLedger {
  save(id: string, issuedAt: string): Promise<void>;
  /** When the request was sent; undefined when unknown or answered already. */
  issuedAt(id: string): Promise<string | undefined>;
  /** Marks the request answered; false when it was answered before. */
  answer(id: string): Promise<boolean>;
}

type Env = Record<string, string | undefined>;

/** Certificates pasted into one-line variables often arrive with literal `\n`. */
function parseCertificate(raw: string): string {
  const pem = raw.replace(/\\n/g, '\n');
  try {
    new X509Certificate(pem);
  } catch {
    throw new FederationConfigError('VIGIL_SAML_IDP_CERT is not a PEM certificate');
  }
  return pem;
}

export function samlConfigFrom(env: Env): SamlConfig | undefined {
  const required = readAllOrNone(env, [
    'VIGIL_SAML_ENTRY_POINT',
    'VIGIL_SAML_ISSUER',
    'VIGIL_SAML_AUDIENCE',
    'VIGIL_SAML_CALLBACK_URL',
    'VIGIL_SAML_IDP_CERT',
    'VIGIL_SAML_IDP_ISSUER',
  ]);
  if (!required) return undefined;
  return {
    entryPoint: requireTrustedUrl('VIGIL_SAML_ENTRY_POINT', required.VIGIL_SAML_ENTRY_POINT),
    issuer: required.VIGIL_SAML_ISSUER,
    audience: required.VIGIL_SAML_AUDIENCE,
    callbackUrl: requireTrustedUrl('VIGIL_SAML_CALLBACK_URL', required.VIGIL_SAML_CALLBACK_URL),
    idpCert: parseCertificate(required.VIGIL_SAML_IDP_CERT),
    idpIssuer: required.VIGIL_SAML_IDP_ISSUER,
    allowUnsolicited: trueOrFalse('VIGIL_SAML_ALLOW_UNSOLICITED', env.VIGIL_SAML_ALLOW_UNSOLICITED),
    groupsAttribute: env.VIGIL_SAML_GROUPS_ATTRIBUTE?.trim() || DEFAULT_GROUPS_ATTRIBUTE,
    roleMap: parseRoleMap('VIGIL_SAML_ROLE_MAP', env.VIGIL_SAML_ROLE_MAP),
  };
}

/** node-saml reports failures as messages only; these are the ones it has. */
const REASON_OF_MESSAGE: [RegExp, SamlReason][] = [
  [/InResponseTo is missing/i, 'unsolicited'],
  [/InResponseTo/i, 'unknown_request'],
  [/signature/i, 'signature'],
  [/expired/i, 'expired'],
  // node-saml's words when every bearer confirmation is outside its validity window.
  [/No valid subject confirmation/i, 'expired'],
  [/not yet valid/i, 'not_yet_valid'],
  [/audience/i, 'audience'],
];

/** Never keeps the cause: node-saml's messages quote values from the response. */
function classify(error: unknown): SamlError {
  if (error instanceof LedgerUnavailable) return new SamlError(503, 'unavailable');
  if (error instanceof SamlStatusError) return new SamlError(401, 'idp_status');
  const message = error instanceof Error ? error.message : '';
  const match = REASON_OF_MESSAGE.find(([pattern]) => pattern.test(message));
  return new SamlError(401, match ? match[1] : 'malformed');
}

/** The parsed assertion as node-saml gives it: xml2js nodes, attributes under `$`. */
type XmlNode = { $?: Record<string, unknown>; [child: string]: unknown };

const isNode = (value: unknown): value is XmlNode => typeof value === 'object' && value !== null;

function children(node: XmlNode | undefined, name: string): XmlNode[] {
  const value = node?.[name];
  return Array.isArray(value) ? value.filter(isNode) : [];
}

/** An element's text, which node-saml's parser keeps under `_`. */
function textOf(node: XmlNode | undefined): string | undefined {
  const value = node?._;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function attribute(node: XmlNode | undefined, name: string): string | undefined {
  const value = node?.$?.[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function instant(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new SamlError(401, 'malformed');
  return ms;
}

/**
 * Web SSO profile 4.1.4.2: a bearer confirmation must name our consumer service as Recipient
 * and carry NotOnOrAfter. node-saml leaves both unchecked unless it correlates requests.
 */
function bearerConfirmation(assertion: XmlNode, callbackUrl: string): XmlNode {
  const confirmation = children(children(assertion, 'Subject')[0], 'SubjectConfirmation')
    .filter((candidate) => attribute(candidate, 'Method') === BEARER)
    .map((candidate) => children(candidate, 'SubjectConfirmationData')[0])
    .find((data) => attribute(data, 'Recipient') === callbackUrl);
  if (!confirmation) throw new SamlError(401, 'recipient');
  if (!attribute(confirmation, 'NotOnOrAfter')) throw new SamlError(401, 'claims');
  return confirmation;
}

/** Checks each window at `now`; returns the instant after which the assertion is refused. */
function acceptedUntil(windows: XmlNode[], now: number): Date {
  const ends: number[] = [];
  for (const window of windows) {
    const notBefore = instant(attribute(window, 'NotBefore'));
    const notOnOrAfter = instant(attribute(window, 'NotOnOrAfter'));
    if (notBefore !== undefined && now + CLOCK_SKEW_MS < notBefore) {
      throw new SamlError(401, 'not_yet_valid');
    }
    if (notOnOrAfter !== undefined && now - CLOCK_SKEW_MS >= notOnOrAfter) {
      throw new SamlError(401, 'expired');
    }
    if (notOnOrAfter !== undefined) ends.push(notOnOrAfter);
  }
  return new Date(Math.min(...ends) + CLOCK_SKEW_MS);
}

/**
 * Refuses, unparsed, a document no identity provider sends: one with a DTD (entity expansion),
 * or with more elements, nesting or attributes on one element than any response needs. The
 * scan is lexical and linear: comments, CDATA and processing instructions are skipped whole,
 * and a tag ends at the first `>` outside quotes.
 */
function refuseUnreasonableShape(xml: string): void {
  const malformed = () => new SamlError(401, 'malformed');
  const past = (terminator: string, from: number) => {
    const found = xml.indexOf(terminator, from);
    if (found === -1) throw malformed();
    return found + terminator.length;
  };
  let elements = 0;
  let depth = 0;
  let attributeCount = 0;
  for (let at = xml.indexOf('<'); at !== -1; at = xml.indexOf('<', at)) {
    if (xml.startsWith('<!--', at)) at = past('-->', at + 4);
    else if (xml.startsWith('<![CDATA[', at)) at = past(']]>', at + 9);
    else if (xml.startsWith('<?', at)) at = past('?>', at + 2);
    else if (xml.startsWith('<!', at))
      throw malformed(); // DOCTYPE, ENTITY and their kin
    else if (xml.startsWith('</', at)) {
      depth -= 1;
      if (depth < 0) throw malformed();
      at = past('>', at + 2);
    } else {
      const { end, attributes } = scanTag(xml, at + 1);
      if (end === -1) throw malformed();
      elements += 1;
      attributeCount += attributes;
      if (xml[end - 1] !== '/') depth += 1;
      if (
        elements > MAX_SAML_ELEMENTS ||
        depth > MAX_SAML_DEPTH ||
        attributes > MAX_SAML_ATTRIBUTES_PER_ELEMENT ||
        attributeCount > MAX_SAML_ATTRIBUTES
      ) {
        throw malformed();
      }
      at = end + 1;
    }
  }
}

/** The index of the `>` that ends the tag starting at `from`, and how many attributes it has. */
function scanTag(xml: string, from: number): { end: number; attributes: number } {
  let quote = '';
  let attributes = 0;
  for (let i = from; i < xml.length; i += 1) {
    const c = xml[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
      attributes += 1;
    } else if (c === '>') {
      return { end: i, attributes };
    }
  }
  return { end: -1, attributes };
}

/**
 * Refuses a response if any signature in it names SHA-1. node-saml verifies whichever
 * algorithm the signature declares, and its verified XML no longer carries the signature, so
 * the document is read again here, by a parser, which also resolves any character references.
 */
function refuseWeakSignatures(xml: string): void {
  const quiet = () => undefined;
  const doc = new DOMParser({
    errorHandler: { warning: quiet, error: quiet, fatalError: quiet },
  }).parseFromString(xml, 'text/xml');
  for (const name of ['SignatureMethod', 'DigestMethod']) {
    const nodes = doc.getElementsByTagNameNS(XMLDSIG, name);
    for (let i = 0; i < nodes.length; i += 1) {
      const algorithm = nodes.item(i)?.getAttribute('Algorithm') ?? '';
      if (WEAK_ALGORITHM.test(algorithm)) throw new SamlError(401, 'weak_algorithm');
    }
  }
}

function stringValues(value: unknown): string[] {
  const values = Array.isArray(value) ? value : [value];
  return values.filter((item): item is string => typeof item === 'string' && item !== '');
}

function firstOf(attributes: Record<string, unknown>, names: string[]): string | undefined {
  return names.flatMap((name) => stringValues(attributes[name]))[0];
}

/**
 * Who the signed assertion names. Issuer and NameID are read from their own elements and the
 * rest from the attribute map: node-saml also copies attributes onto the profile beside its own
 * fields, where an attribute named `nameID` or `issuer` could stand in for a missing element.
 */
function identityOf(profile: Profile, assertion: XmlNode, config: SamlConfig): SamlIdentity {
  const issuer = textOf(children(assertion, 'Issuer')[0]);
  const nameIdNode = children(children(assertion, 'Subject')[0], 'NameID')[0];
  const nameID = textOf(nameIdNode);
  if (!issuer || !nameID || nameID.length > MAX_IDENTIFIER_LENGTH) {
    throw new SamlError(401, 'claims');
  }
  const attributes = isNode(profile.attributes) ? profile.attributes : {};
  const nameIdEmail = attribute(nameIdNode, 'Format') === EMAIL_NAME_ID ? nameID : undefined;
  const email = plainEmail(firstOf(attributes, EMAIL_ATTRIBUTES) ?? nameIdEmail);
  const name = firstOf(attributes, NAME_ATTRIBUTES);
  return {
    issuer,
    subject: nameID,
    ...(email && { email }),
    emailVerified: email !== undefined,
    ...(name && { name }),
    roles: mapRoles(stringValues(attributes[config.groupsAttribute]), config.roleMap),
  };
}

export interface SamlGuards {
  replay: ReplayGuard;
  requests: RequestLedger;
}

export class SamlVerifier {
  private readonly saml?: SAML;

  constructor(
    private readonly config: SamlConfig | undefined,
    private readonly guards: SamlGuards,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.saml = config && new SAML(this.options(config));
  }

  /**
   * Starts a sign-in: the identity provider's URL carrying a new AuthnRequest (HTTP-Redirect
   * binding), and the request's id, which the caller keeps in the browser to match the answer.
   */
  async loginRedirect(): Promise<{ url: string; requestId: string }> {
    const { config } = this;
    if (!config) throw new SamlError(503, 'not_configured');
    const requestId = `_${randomBytes(20).toString('hex')}`;
    const saml = new SAML({ ...this.options(config), generateUniqueId: () => requestId });
    try {
      return { url: await saml.getAuthorizeUrlAsync('', undefined, {}), requestId };
    } catch (error) {
      throw new SamlError(503, 'unavailable', { cause: error });
    }
  }

  /**
   * Verifies a response posted to our consumer service. `requestId` is the id of the sign-in
   * this browser started, if any: an answer to any other request is refused, so a response
   * captured elsewhere cannot be posted into this browser.
   */
  async verifyPostResponse(samlResponseBase64: string, requestId?: string): Promise<SamlIdentity> {
    const { config, saml } = this;
    if (!config || !saml) throw new SamlError(503, 'not_configured');
    if (samlResponseBase64.length > MAX_SAML_RESPONSE_LENGTH) throw new SamlError(401, 'malformed');
    const xml = Buffer.from(samlResponseBase64, 'base64').toString('utf8');
    refuseUnreasonableShape(xml);
    const profile = await validated(saml, samlResponseBase64);
    const assertion = signedAssertionOf(profile);
    const id = attribute(assertion, 'ID');
    if (!id || id.length > MAX_IDENTIFIER_LENGTH) throw new SamlError(401, 'malformed');
    refuseWeakSignatures(xml);
    if (textOf(children(assertion, 'Issuer')[0]) !== config.idpIssuer) {
      throw new SamlError(401, 'issuer');
    }

    // node-saml reads the process clock; these checks use ours, so both must agree.
    const confirmation = bearerConfirmation(assertion, config.callbackUrl);
    const until = acceptedUntil(
      [confirmation, ...children(assertion, 'Conditions')],
      this.clock().getTime(),
    );
    // Web SSO profile 4.1.4.2: an answer names its request inside the signed confirmation.
    const answered = attribute(confirmation, 'InResponseTo');
    if (answered === undefined && !config.allowUnsolicited) {
      throw new SamlError(401, 'unsolicited');
    }

    const identity = identityOf(profile, assertion, config);
    if (answered !== undefined) await this.answer(answered, requestId);
    await this.consume(id, until);
    return identity;
  }

  private options(config: SamlConfig): NodeSamlOptions {
    // Only the assertion must be signed: it is what we read, and most providers sign just it.
    return {
      entryPoint: config.entryPoint,
      issuer: config.issuer,
      audience: config.audience,
      callbackUrl: config.callbackUrl,
      idpCert: config.idpCert,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      acceptedClockSkewMs: CLOCK_SKEW_MS,
      validateInResponseTo: config.allowUnsolicited
        ? ValidateInResponseTo.ifPresent
        : ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: REQUEST_TTL_MS,
      cacheProvider: requestCache(this.guards.requests),
    };
  }

  private async answer(answered: string, requestId: string | undefined): Promise<void> {
    if (answered !== requestId) throw new SamlError(401, 'request_mismatch');
    let first: boolean;
    try {
      first = await this.guards.requests.answer(answered);
    } catch (error) {
      throw new SamlError(503, 'unavailable', { cause: error });
    }
    if (!first) throw new SamlError(401, 'replayed');
  }

  private async consume(assertionId: string, until: Date): Promise<void> {
    let firstUse: boolean;
    try {
      firstUse = await this.guards.replay(assertionId, until);
    } catch (error) {
      throw new SamlError(503, 'unavailable', { cause: error });
    }
    if (!firstUse) throw new SamlError(401, 'replayed');
  }
}

/**
 * node-saml's view of the ledger: it records each request it builds and looks up the one a
 * response answers. Its removal is left to `answer`, which happens once the whole response is
 * judged and is a conditional write, where node-saml would remove before it has finished.
 */
function requestCache(ledger: RequestLedger): CacheProvider {
  return {
    saveAsync: async (key, value) => {
      await ledger.save(key, value);
      return { value, createdAt: Date.now() };
    },
    getAsync: async (key) => {
      // Our ids are short; a longer one was never sent, and is not looked up.
      if (key.length > MAX_IDENTIFIER_LENGTH) return null;
      try {
        return (await ledger.issuedAt(key)) ?? null;
      } catch (error) {
        throw new LedgerUnavailable(error);
      }
    },
    removeAsync: async () => null,
  };
}

/** The request ledger could not be read: the response is undecided, not refused. */
class LedgerUnavailable extends Error {
  constructor(cause: unknown) {
    super('the sign-in request ledger is unavailable', { cause });
    this.name = 'LedgerUnavailable';
  }
}

async function validated(saml: SAML, samlResponseBase64: string): Promise<Profile> {
  let profile: Profile | null;
  try {
    ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: samlResponseBase64 }));
  } catch (error) {
    throw classify(error);
  }
  // A logout response carries no profile and signs nobody in.
  if (!profile) throw new SamlError(401, 'malformed');
  return profile;
}

/** The assertion node-saml parsed from the signed bytes only. */
function signedAssertionOf(profile: Profile): XmlNode {
  const parsed = profile.getAssertion?.();
  const assertion = isNode(parsed) ? parsed.Assertion : undefined;
  if (!isNode(assertion)) throw new SamlError(401, 'malformed');
  return assertion;
}
