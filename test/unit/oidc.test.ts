import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';
import {
  CLOCK_LEEWAY_SECONDS,
  FederationConfigError,
  OidcError,
  OidcVerifier,
  oidcConfigFrom,
  requireAudience,
  type OidcConfig,
} from '../../functions/identity/oidc';

const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'hipaa-gov-api';
/** A fixed instant, far from the real clock, so only the injected clock can make tokens valid. */
const NOW = new Date('2026-03-02T14:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const clock = () => new Date(NOW.getTime());

interface TestKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: JWK;
}

async function makeKey(kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return {
    kid,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
  };
}

/** The provider's key set endpoint: what it serves and how often it was asked. */
const jwks = { keys: [] as JWK[], status: 200, requests: 0 };
let server: Server;
let jwksUrl: string;
let trusted: TestKey;
let rotated: TestKey;
let stranger: TestKey;

beforeAll(async () => {
  [trusted, rotated, stranger] = (await Promise.all(['k1', 'k2', 'k1'].map(makeKey))) as [
    TestKey,
    TestKey,
    TestKey,
  ];
  server = createServer((request, response) => {
    jwks.requests += 1;
    if (request.url === '/hang') return;
    response.writeHead(jwks.status, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ keys: jwks.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  Object.assign(jwks, { keys: [trusted.jwk], status: 200, requests: 0 });
});

function config(overrides: Partial<OidcConfig> = {}): OidcConfig {
  return {
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUrl,
    rolesClaim: 'groups',
    roleMap: { 'vigil-auditors': 'auditor', 'vigil-nurses': 'nurse' },
    ...overrides,
  };
}

const verifier = (overrides: Partial<OidcConfig> = {}, options = {}) =>
  new OidcVerifier(config(overrides), { clock, ...options });

/** A token from the trusted provider, valid at NOW unless the claims say otherwise. */
function idToken(claims: JWTPayload = {}, key: TestKey = trusted): Promise<string> {
  const payload = { iss: ISSUER, aud: AUDIENCE, sub: 'u-123', iat: NOW_S - 5, exp: NOW_S + 300 };
  return new SignJWT({ ...payload, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .sign(key.privateKey);
}

const refusal = (status: 401 | 503, reason: string) =>
  expect.objectContaining({ name: 'OidcError', status, reason });

describe('B19: audience and issuer are required; one explicit clock leeway', () => {
  it('uses one leeway of 60 seconds for nbf and exp', () => {
    expect(CLOCK_LEEWAY_SECONDS).toBe(60);
  });

  it.each([
    ['1: no aud', { aud: undefined }, 'audience'],
    ['2: aud of another client', { aud: 'billing-portal' }, 'audience'],
    ['4: another issuer', { iss: 'https://other.example.test' }, 'issuer'],
    ['6: nbf ten minutes ahead', { nbf: NOW_S + 600 }, 'not_yet_valid'],
    ['8: exp ten minutes ago', { exp: NOW_S - 600 }, 'expired'],
  ])('refuses case %s with 401', async (_, claims, reason) => {
    const token = await idToken(claims);

    await expect(verifier().verify(token)).rejects.toEqual(refusal(401, reason));
  });

  it.each([
    ['without aud', { sub: 'u-123' }],
    ['for another client', { aud: 'billing-portal' }],
    ['for clients that are not us', { aud: ['billing-portal', 'hipaa-gov-api-2'] }],
  ])('checks the audience itself, not only through jose: refuses claims %s', (_, claims) => {
    expect(() => requireAudience(claims, AUDIENCE)).toThrow(refusal(401, 'audience'));
  });

  it.each([
    ['3: aud listing us among others', { aud: ['billing-portal', AUDIENCE] }],
    ['5: nbf twenty seconds ahead', { nbf: NOW_S + 20 }],
    ['7: exp thirty seconds ago', { exp: NOW_S - 30 }],
  ])('accepts case %s', async (_, claims) => {
    const token = await idToken(claims);

    const identity = await verifier().verify(token);

    expect(identity).toMatchObject({ issuer: ISSUER, subject: 'u-123' });
  });
});

describe('signatures and keys', () => {
  it('caches the key set between verifications', async () => {
    const oidc = verifier();

    await oidc.verify(await idToken());
    await oidc.verify(await idToken({ sub: 'u-456' }));

    expect(jwks.requests).toBe(1);
  });

  it('refuses a token signed by a key the provider does not publish', async () => {
    const forged = await idToken({}, stranger);

    await expect(verifier().verify(forged)).rejects.toEqual(refusal(401, 'signature'));
  });

  it('picks up a rotated key: a new kid makes it fetch the key set again', async () => {
    const oidc = verifier({}, { jwksCooldownMs: 0 });
    await oidc.verify(await idToken());
    jwks.keys = [rotated.jwk];

    const identity = await oidc.verify(await idToken({}, rotated));

    expect(identity.subject).toBe('u-123');
    expect(jwks.requests).toBe(2);
  });

  it('refetches for an unknown kid at most once per cooldown', async () => {
    const oidc = verifier();
    await oidc.verify(await idToken());
    jwks.keys = [rotated.jwk];

    await expect(oidc.verify(await idToken({}, rotated))).rejects.toEqual(
      refusal(401, 'signature'),
    );
    expect(jwks.requests).toBe(1);
  });

  it('refuses an unsigned token (alg none) without asking for keys', async () => {
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'u-123', exp: NOW_S + 300 };
    const unsigned = `${part({ alg: 'none' })}.${part(claims)}.`;

    await expect(verifier().verify(unsigned)).rejects.toEqual(refusal(401, 'algorithm'));
    expect(jwks.requests).toBe(0);
  });

  it('takes a token in its one canonical spelling only', async () => {
    const token = await idToken();
    const [header, payload, signature] = token.split('.') as [string, string, string];
    // The last character of a segment whose length leaves spare bits can change those bits
    // alone; decoders ignore them.
    const last = signature.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const spareBits = alphabet[alphabet.indexOf(last) ^ 1] as string;
    const variants = [
      `${token}\n`,
      ` ${token}`,
      `${header}.${payload}.${signature.slice(0, 10)}\n${signature.slice(10)}`,
      `${header}.${payload}.${signature}=`,
      `${header}.${payload}.${signature.slice(0, -1)}${spareBits}`,
    ];

    await expect(verifier().verify(token)).resolves.toMatchObject({ subject: 'u-123' });
    for (const variant of variants) {
      await expect(verifier().verify(variant)).rejects.toEqual(refusal(401, 'malformed'));
    }
  });

  it('refuses an HS256 token, whatever secret signed it', async () => {
    const secret = new TextEncoder().encode('a shared secret of thirty-two by');
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'u-123', exp: NOW_S + 300 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(secret);

    await expect(verifier().verify(token)).rejects.toEqual(refusal(401, 'algorithm'));
  });

  it('refuses to pin a symmetric algorithm', () => {
    expect(() => verifier({ algorithms: ['HS256'] })).toThrow(FederationConfigError);
  });

  it('refuses a token that is not a JWT', async () => {
    await expect(verifier().verify('not.a-token')).rejects.toEqual(refusal(401, 'malformed'));
  });
});

describe('failing closed', () => {
  it('answers 503 when OIDC is not configured', async () => {
    const token = await idToken();

    await expect(new OidcVerifier(undefined).verify(token)).rejects.toEqual(
      refusal(503, 'not_configured'),
    );
  });

  it('answers 503 when the key set cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const oidc = verifier({ jwksUrl: `http://127.0.0.1:${port}/jwks` });

    await expect(oidc.verify(await idToken())).rejects.toEqual(refusal(503, 'unavailable'));
  });

  it('answers 503 when the key set endpoint fails', async () => {
    jwks.status = 500;

    await expect(verifier().verify(await idToken())).rejects.toEqual(refusal(503, 'unavailable'));
  });

  it('answers 503 when the key set endpoint does not answer in time', async () => {
    const oidc = verifier({ jwksUrl: jwksUrl.replace('/jwks', '/hang') }, { fetchTimeoutMs: 200 });

    await expect(oidc.verify(await idToken())).rejects.toEqual(refusal(503, 'unavailable'));
  });

  it('never repeats the token in the error', async () => {
    const token = await idToken({ aud: 'billing-portal' });

    const error = await verifier()
      .verify(token)
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(OidcError);
    expect(JSON.stringify(error) + String(error)).not.toContain(token.split('.')[1]);
  });
});

describe('claims', () => {
  it('maps the groups claim through the role map, ignoring unmapped groups', async () => {
    const token = await idToken({ groups: ['vigil-auditors', 'marketing', 'constructor'] });

    const identity = await verifier().verify(token);

    expect(identity.roles).toEqual(['auditor']);
  });

  it('reads a space-separated roles claim when configured', async () => {
    const token = await idToken({ roles: 'vigil-nurses vigil-auditors vigil-nurses' });

    const identity = await verifier({ rolesClaim: 'roles' }).verify(token);

    expect(identity.roles).toEqual(['nurse', 'auditor']);
  });

  it.each([
    [['mfa'], true],
    [['pwd', 'otp'], true],
    [['hwk', 'fpt'], true],
    [['pwd', 'mfa'], true],
    [['pwd'], false],
    [['otp'], false],
    [['pwd', 'pin'], false],
    [['pwd', 'mca'], false],
    ['mfa', false],
    [undefined, false],
  ])('amr %j gives multiFactor %s', async (amr, multiFactor) => {
    const token = await idToken({ amr } as JWTPayload);

    const identity = await verifier().verify(token);

    expect(identity.multiFactor).toBe(multiFactor);
  });

  it('returns name and a verified e-mail, and drops an e-mail marked unverified', async () => {
    const oidc = verifier();
    const claims = { name: 'Dana Chen', email: 'dana@example.test' };

    const verified = await oidc.verify(await idToken({ ...claims, email_verified: true }));
    const unverified = await oidc.verify(await idToken({ ...claims, email_verified: false }));

    const silent = await oidc.verify(await idToken(claims));

    expect(verified).toMatchObject({
      name: 'Dana Chen',
      email: 'dana@example.test',
      emailVerified: true,
    });
    expect(unverified).not.toHaveProperty('email');
    expect(unverified.emailVerified).toBe(false);
    // Kept, but not proof enough to provision or link an account by.
    expect(silent).toMatchObject({ email: 'dana@example.test', emailVerified: false });
  });

  it('counts a silent email as verified only for a provider trusted to vouch for its emails', async () => {
    const trusting = verifier({ trustEmail: true });

    const silent = await trusting.verify(await idToken({ email: 'dana@example.test' }));
    const denied = await trusting.verify(
      await idToken({ email: 'dana@example.test', email_verified: false }),
    );

    expect(silent).toMatchObject({ email: 'dana@example.test', emailVerified: true });
    expect(denied).toMatchObject({ emailVerified: false });
    expect(denied).not.toHaveProperty('email');
  });

  it('drops an email that is not plain ASCII rather than fold it onto another address', async () => {
    const kelvin = await verifier().verify(
      await idToken({ email: '\u212Aate.moss@example.test', email_verified: true }),
    );
    const padded = await verifier().verify(
      await idToken({ email: ' kate.moss@example.test ', email_verified: true }),
    );

    expect(kelvin).not.toHaveProperty('email');
    expect(padded).not.toHaveProperty('email');
  });

  it('refuses a token issued in the future beyond the leeway, and accepts one within it', async () => {
    await expect(verifier().verify(await idToken({ iat: NOW_S + 600 }))).rejects.toEqual(
      refusal(401, 'not_yet_valid'),
    );
    await expect(verifier().verify(await idToken({ iat: NOW_S + 20 }))).resolves.toMatchObject({
      subject: 'u-123',
    });
  });

  it('refuses a token without sub', async () => {
    const token = await idToken({ sub: undefined });

    await expect(verifier().verify(token)).rejects.toEqual(refusal(401, 'claims'));
  });

  it('refuses a token authorised for another party (azp)', async () => {
    const token = await idToken({ aud: [AUDIENCE, 'billing-portal'], azp: 'billing-portal' });

    await expect(verifier().verify(token)).rejects.toEqual(refusal(401, 'audience'));
  });

  it('refuses a token whose nonce is not the one sent', async () => {
    const token = await idToken({ nonce: 'n-other' });

    await expect(verifier().verify(token, { nonce: 'n-1' })).rejects.toEqual(
      refusal(401, 'claims'),
    );
  });
});

describe('oidcConfigFrom', () => {
  const env = {
    VIGIL_OIDC_ISSUER: ISSUER,
    VIGIL_OIDC_AUDIENCE: AUDIENCE,
    VIGIL_OIDC_JWKS_URL: 'https://idp.example.test/keys',
  };

  it('is undefined when OIDC is not configured', () => {
    expect(oidcConfigFrom({})).toBeUndefined();
  });

  it('reads the settings, with groups as the default roles claim', () => {
    const parsed = oidcConfigFrom({ ...env, VIGIL_OIDC_ROLE_MAP: '{"g-1":"physician"}' });

    expect(parsed).toEqual({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUrl: 'https://idp.example.test/keys',
      rolesClaim: 'groups',
      roleMap: { 'g-1': 'physician' },
      trustEmail: false,
    });
    expect(oidcConfigFrom({ ...env, VIGIL_OIDC_TRUST_EMAIL: 'true' })?.trustEmail).toBe(true);
  });

  it.each([
    ['a missing audience', { ...env, VIGIL_OIDC_AUDIENCE: undefined }, 'VIGIL_OIDC_AUDIENCE'],
    ['a missing issuer', { ...env, VIGIL_OIDC_ISSUER: ' ' }, 'VIGIL_OIDC_ISSUER'],
    ['an unknown role', { ...env, VIGIL_OIDC_ROLE_MAP: '{"g":"admin"}' }, 'VIGIL_OIDC_ROLE_MAP'],
    ['a role map that is not JSON', { ...env, VIGIL_OIDC_ROLE_MAP: '{' }, 'VIGIL_OIDC_ROLE_MAP'],
    ['a role map array', { ...env, VIGIL_OIDC_ROLE_MAP: '["g"]' }, 'VIGIL_OIDC_ROLE_MAP'],
    [
      'a trust switch that is not a boolean',
      { ...env, VIGIL_OIDC_TRUST_EMAIL: 'yes' },
      'VIGIL_OIDC_TRUST_EMAIL',
    ],
    [
      'a key set over plain http',
      { ...env, VIGIL_OIDC_JWKS_URL: 'http://idp.example.test/keys' },
      'VIGIL_OIDC_JWKS_URL',
    ],
  ])('names the variable for %s', (_, partial, variable) => {
    expect(() => oidcConfigFrom(partial)).toThrow(
      expect.objectContaining({
        name: 'FederationConfigError',
        message: expect.stringContaining(variable),
      }),
    );
  });
});
