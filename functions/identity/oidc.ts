import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { PERSON_ROLES, type FederatedIdentity, type PersonRole } from './model';

/**
 * Verification of OpenID Connect ID tokens (OIDC Core 1.0, section 3.1.3.7) and the mapping of
 * their claims onto Vigil roles. Provisioning and sessions belong to the caller, which must key
 * accounts on (issuer, subject) and never on the e-mail address.
 */

/**
 * The one allowance for clock drift between the identity provider and us, applied alike to
 * `nbf` and `exp` (RFC 7519 sections 4.1.4 and 4.1.5 allow "a small leeway").
 */
export const CLOCK_LEEWAY_SECONDS = 60;

/**
 * ID tokens are exchanged at once, and each only once; one that stays valid longer than this
 * was not made for sign-in and is refused.
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60;

/** RS256 is the algorithm every OpenID provider must offer (OIDC Core 15.1); ES256 is common. */
export const DEFAULT_ALGORITHMS = ['RS256', 'ES256'];

/**
 * Public-key JWS algorithms (RFC 7518 section 3, RFC 8037). A key set published by the provider
 * holds public keys only, so `none` and the HMAC family can never be pinned.
 */
const PUBLIC_KEY_ALGORITHMS = new Set([
  ...['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  ...['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'],
]);

/** Sign-in waits at most this long for the provider's key set before answering 503. */
export const JWKS_FETCH_TIMEOUT_MS = 3_000;
/** Keys are refetched at most this often when a token names an unknown `kid` (jose's default). */
export const JWKS_COOLDOWN_MS = 30_000;
/** Cached keys are refreshed after this long even without an unknown `kid` (jose's default). */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;

/** OIDC Core 2: `sub` is at most 255 ASCII characters. */
const MAX_SUBJECT_LENGTH = 255;

export interface OidcConfig {
  issuer: string;
  audience: string;
  jwksUrl: string;
  rolesClaim: string;
  roleMap: Record<string, PersonRole>;
  algorithms?: string[];
  /**
   * The provider only issues addresses it controls (a hospital directory such as Entra ID,
   * which sends no `email_verified`): its emails count as verified unless marked otherwise.
   */
  trustEmail?: boolean;
}

export interface OidcIdentity extends FederatedIdentity {
  multiFactor: boolean;
  /** When the token stops being valid, leeway included: a single-use record lasts that long. */
  validUntil: Date;
}

export type OidcReason =
  | ('audience' | 'issuer' | 'expired' | 'not_yet_valid' | 'signature' | 'algorithm')
  | ('malformed' | 'claims' | 'lifetime' | 'replayed' | 'not_configured' | 'unavailable');

/** 401 for a token we refuse; 503 when we cannot decide, which is never taken as success. */
export class OidcError extends Error {
  constructor(
    readonly status: 401 | 503,
    readonly reason: OidcReason,
    options?: { cause?: unknown },
  ) {
    super(
      status === 401 ? `ID token refused: ${reason}` : `sign-in unavailable: ${reason}`,
      options,
    );
    this.name = 'OidcError';
  }
}

/** A federation setting is missing or wrong; the message names the variable to fix. */
export class FederationConfigError extends Error {
  override readonly name = 'FederationConfigError';
}

type Env = Record<string, string | undefined>;

function stringsOf(value: unknown): string[] {
  const values: unknown[] = Array.isArray(value) ? value : [];
  return values.filter((item): item is string => typeof item === 'string');
}

/** All of `names`, or undefined when none is set; a partial set names the first one missing. */
export function readAllOrNone<K extends string>(env: Env, names: readonly K[]) {
  const present = names.filter((name) => env[name]?.trim());
  if (present.length === 0) return undefined;
  const missing = names.find((name) => !present.includes(name));
  if (missing) throw new FederationConfigError(`${missing} is not set (needed with ${present[0]})`);
  const values = names.map((name) => [name, String(env[name]).trim()]);
  return Object.fromEntries(values) as Record<K, string>;
}

/** TLS is required (OIDC Discovery 1.0 section 3) except towards this machine. */
export function requireTrustedUrl(variable: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FederationConfigError(`${variable} is not a URL`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new FederationConfigError(`${variable} must be an https URL`);
  }
  return raw;
}

/** A JSON object from provider group to Vigil role; any other role is refused by name. */
export function parseRoleMap(variable: string, raw: string | undefined) {
  if (!raw?.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new FederationConfigError(`${variable} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FederationConfigError(`${variable} must be a JSON object of group to role`);
  }
  const entries = Object.entries(parsed).map(([group, role]) => {
    if (!(PERSON_ROLES as readonly unknown[]).includes(role)) {
      throw new FederationConfigError(`${variable} maps "${group}" to an unknown role`);
    }
    return [group, role as PersonRole] as const;
  });
  return Object.fromEntries(entries) as Record<string, PersonRole>;
}

/** Provider groups to Vigil roles; unmapped groups grant nothing. */
export function mapRoles(groups: readonly string[], roleMap: Record<string, PersonRole>) {
  const roles = groups.flatMap((group) => (Object.hasOwn(roleMap, group) ? [roleMap[group]] : []));
  return [...new Set(roles)].filter((role): role is PersonRole => role !== undefined);
}

export function oidcConfigFrom(env: Env): OidcConfig | undefined {
  const required = readAllOrNone(env, [
    'VIGIL_OIDC_ISSUER',
    'VIGIL_OIDC_AUDIENCE',
    'VIGIL_OIDC_JWKS_URL',
  ]);
  if (!required) return undefined;
  return {
    issuer: required.VIGIL_OIDC_ISSUER,
    audience: required.VIGIL_OIDC_AUDIENCE,
    jwksUrl: requireTrustedUrl('VIGIL_OIDC_JWKS_URL', required.VIGIL_OIDC_JWKS_URL),
    rolesClaim: env.VIGIL_OIDC_ROLES_CLAIM?.trim() || 'groups',
    roleMap: parseRoleMap('VIGIL_OIDC_ROLE_MAP', env.VIGIL_OIDC_ROLE_MAP),
    trustEmail: trueOrFalse('VIGIL_OIDC_TRUST_EMAIL', env.VIGIL_OIDC_TRUST_EMAIL),
  };
}

/** A true/false setting: unset means false; anything but the two words is refused by name. */
export function trueOrFalse(name: string, raw: string | undefined): boolean {
  const value = raw?.trim() ?? '';
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new FederationConfigError(`${name} must be true or false`);
}

/**
 * An address as an account may hold it: printable ASCII without spaces, whatever its case.
 * Anything else is dropped rather than folded, since folding maps look-alikes such as the
 * Kelvin sign onto someone else's address.
 */
export function plainEmail(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x21-\x7e]+@[\x21-\x7e]+$/.test(value) ? value : undefined;
}

/**
 * Authentication method references (RFC 8176 section 2) by the factor they prove (NIST SP
 * 800-63B section 5.1). Methods such as `mca`, `user`, `geo` or `rba` prove no factor.
 */
const METHODS_OF_FACTOR = {
  knowledge: ['pwd', 'pin', 'kba'],
  possession: ['otp', 'hwk', 'swk', 'sc', 'pop', 'sms', 'tel'],
  inherence: ['fpt', 'face', 'iris', 'retina', 'vbm'],
};

/**
 * Multi-factor when the provider says `mfa`, or when `amr` names methods from at least two
 * different factors (`pwd` with `otp`, `hwk` with `fpt`). One factor used twice is not enough.
 */
export function isMultiFactor(amr: unknown): boolean {
  const methods = stringsOf(amr);
  if (methods.includes('mfa')) return true;
  const factors = Object.values(METHODS_OF_FACTOR).filter((factor) =>
    factor.some((method) => methods.includes(method)),
  );
  return factors.length >= 2;
}

/** jose error codes that mean the token itself is bad; anything else means we could not check. */
const REASON_OF_CODE: Record<string, OidcReason> = {
  ERR_JWT_EXPIRED: 'expired',
  ERR_JOSE_ALG_NOT_ALLOWED: 'algorithm',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'signature',
  ERR_JWKS_NO_MATCHING_KEY: 'signature',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'signature',
  ERR_JWS_INVALID: 'malformed',
  ERR_JWT_INVALID: 'malformed',
  ERR_JOSE_NOT_SUPPORTED: 'malformed',
};

function reasonOfClaimFailure(claim: unknown, failure: unknown): OidcReason {
  if (claim === 'iss') return 'issuer';
  if (claim === 'aud') return 'audience';
  if (claim === 'nbf' && failure === 'check_failed') return 'not_yet_valid';
  if (claim === 'exp' && failure === 'check_failed') return 'expired';
  return 'claims';
}

/** The cause is kept only for 503s: a refused token's error carries its claims. */
function classify(error: unknown): OidcError {
  const { code, claim, reason } = (error ?? {}) as Record<string, unknown>;
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    return new OidcError(401, reasonOfClaimFailure(claim, reason));
  }
  if (typeof code === 'string' && Object.hasOwn(REASON_OF_CODE, code)) {
    return new OidcError(401, REASON_OF_CODE[code] ?? 'malformed');
  }
  return new OidcError(503, 'unavailable', { cause: error });
}

function pinnedAlgorithms(configured: string[] | undefined): string[] {
  const algorithms = configured?.length ? configured : DEFAULT_ALGORITHMS;
  const refused = algorithms.find((algorithm) => !PUBLIC_KEY_ALGORITHMS.has(algorithm));
  if (refused) throw new FederationConfigError(`OIDC algorithm ${refused} is not a public-key one`);
  return algorithms;
}

/**
 * Checked here and not only by jose: a token minted for another client of the same provider,
 * without `aud`, must never pass. `azp`, when present, must be us (OIDC Core 3.1.3.7 item 5).
 */
export function requireAudience(payload: JWTPayload, audience: string): void {
  const audiences = typeof payload.aud === 'string' ? [payload.aud] : stringsOf(payload.aud);
  if (!audiences.includes(audience)) throw new OidcError(401, 'audience');
  if (payload.azp !== undefined && payload.azp !== audience) throw new OidcError(401, 'audience');
}

function requireClaims(payload: JWTPayload, nonce: string | undefined, now: Date): string {
  const { sub } = payload;
  if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUBJECT_LENGTH) {
    throw new OidcError(401, 'claims');
  }
  const exp = payload.exp as number;
  const seconds = now.getTime() / 1000;
  if (exp - seconds > MAX_TOKEN_LIFETIME_SECONDS) throw new OidcError(401, 'lifetime');
  // A token issued in the future comes from a broken or forged clock (same leeway as nbf).
  if (typeof payload.iat === 'number' && payload.iat > seconds + CLOCK_LEEWAY_SECONDS) {
    throw new OidcError(401, 'not_yet_valid');
  }
  // The nonce binds the token to the browser that started sign-in (OIDC Core 3.1.2.1).
  if (nonce !== undefined && payload.nonce !== nonce) throw new OidcError(401, 'claims');
  return sub;
}

/**
 * A compact JWS in its one canonical spelling: three base64url segments without padding,
 * whitespace or stray bits. Decoders forgive such variants, so without this one token could
 * be spelt many ways, and a record of its single use would not recognise it.
 */
function isCanonicalJws(token: string): boolean {
  const segments = token.split('.');
  return (
    segments.length === 3 &&
    segments.every(
      (segment) =>
        /^[A-Za-z0-9_-]*$/.test(segment) &&
        Buffer.from(segment, 'base64url').toString('base64url') === segment,
    )
  );
}

/** Providers send groups as an array, or as a space-separated string like `scope`. */
function groupsOf(value: unknown): string[] {
  return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : stringsOf(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function identityOf(payload: JWTPayload, subject: string, config: OidcConfig): OidcIdentity {
  // An address the provider says it did not verify is left out, so nobody can rely on it.
  const email = payload.email_verified === false ? undefined : plainEmail(payload.email);
  const name = optionalString(payload.name);
  return {
    issuer: config.issuer,
    subject,
    ...(email && { email }),
    emailVerified:
      email !== undefined && (payload.email_verified === true || config.trustEmail === true),
    ...(name && { name }),
    roles: mapRoles(groupsOf(payload[config.rolesClaim]), config.roleMap),
    multiFactor: isMultiFactor(payload.amr),
    validUntil: new Date(((payload.exp as number) + CLOCK_LEEWAY_SECONDS) * 1000),
  };
}

export interface OidcVerifierOptions {
  clock?: () => Date;
  fetchTimeoutMs?: number;
  /** Minimum time between key set fetches triggered by an unknown `kid`. */
  jwksCooldownMs?: number;
}

interface Provider {
  config: OidcConfig;
  keys: ReturnType<typeof createRemoteJWKSet>;
  algorithms: string[];
}

export class OidcVerifier {
  private readonly provider?: Provider;
  private readonly clock: () => Date;

  constructor(config: OidcConfig | undefined, options: OidcVerifierOptions = {}) {
    this.clock = options.clock ?? (() => new Date());
    if (!config) return;
    // Keys are cached for the life of the verifier; jose refetches them when a token names an
    // unknown `kid` (a rotation), at most once per cooldown.
    const keys = createRemoteJWKSet(new URL(config.jwksUrl), {
      timeoutDuration: options.fetchTimeoutMs ?? JWKS_FETCH_TIMEOUT_MS,
      cooldownDuration: options.jwksCooldownMs ?? JWKS_COOLDOWN_MS,
      cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
    });
    this.provider = { config, keys, algorithms: pinnedAlgorithms(config.algorithms) };
  }

  /** The verified identity, or an OidcError; `nonce` is the one sent with the request. */
  async verify(idToken: string, expected: { nonce?: string } = {}): Promise<OidcIdentity> {
    const { provider } = this;
    if (!provider) throw new OidcError(503, 'not_configured');
    if (!isCanonicalJws(idToken)) throw new OidcError(401, 'malformed');
    const payload = await this.verifiedPayload(idToken, provider);
    requireAudience(payload, provider.config.audience);
    const subject = requireClaims(payload, expected.nonce, this.clock());
    return identityOf(payload, subject, provider.config);
  }

  private async verifiedPayload(idToken: string, provider: Provider): Promise<JWTPayload> {
    const { config, keys, algorithms } = provider;
    try {
      const { payload } = await jwtVerify(idToken, keys, {
        algorithms,
        issuer: config.issuer,
        audience: config.audience,
        requiredClaims: ['sub', 'exp'],
        clockTolerance: CLOCK_LEEWAY_SECONDS,
        currentDate: this.clock(),
      });
      return payload;
    } catch (error) {
      throw classify(error);
    }
  }
}
