import { HttpError } from '../platform/http/errors';
import type { HttpRequest, Principal } from '../platform/http/event';
import { runtime } from '../platform/runtime';
import { Producers } from '../audit/producers';
import { identity } from './context';

/** The console's session cookie: opaque, HttpOnly, Secure, SameSite=Strict. */
export const SESSION_COOKIE = 'vigil_session';

const MESSAGES: Record<string, string> = {
  missing: 'sign in first',
  unknown: 'the session is not valid; sign in again',
  expired_idle: 'the session ended after inactivity; sign in again',
  expired_absolute: 'the session reached its maximum length; sign in again',
  revoked: 'the session was ended; sign in again',
  logout: 'the session was signed out; sign in again',
  limit: 'the session was ended by a newer sign-in; sign in again',
  binding: 'the session was used from another address; sign in again',
  step_up_required: 'confirm with a fresh MFA code at /v1/auth/step-up',
};

/**
 * The SAML sign-in this browser started, so only the answer to it is accepted here. The
 * identity provider posts that answer from its own site, so the cookie must be SameSite=None.
 */
export const SAML_REQUEST_COOKIE = 'vigil_saml_request';

export function cookieOf(request: HttpRequest, wanted: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === wanted) return value.join('=');
  }
  return undefined;
}

export function sessionTokenOf(request: HttpRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization?.toLowerCase().startsWith('bearer ')) return authorization.slice(7).trim();
  return cookieOf(request, SESSION_COOKIE);
}

export function samlRequestCookie(requestId: string, maxAgeSeconds: number): string {
  return `${SAML_REQUEST_COOKIE}=${requestId}; HttpOnly; Secure; SameSite=None; Path=/v1/auth/saml; Max-Age=${maxAgeSeconds}`;
}

export function sessionCookie(token: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}`;
}

export const clearedSessionCookie = () => sessionCookie('', 0);

/**
 * Who is calling, from what the request carries: a producer API key (checked by the same code
 * as the Lambda authorizer) or a Vigil session (checked on the server at every request, so a
 * logout or revocation acts at once). An identity provider's token is never accepted here.
 */
export async function authenticateRequest(request: HttpRequest): Promise<Principal | undefined> {
  const rt = runtime();
  const apiKey = request.headers['x-api-key'];
  if (apiKey) {
    const producer = await new Producers(rt.store, rt.config.auditTable, rt.clock).authenticate(
      apiKey,
    );
    if (!producer) throw new HttpError(401, 'unauthorized', 'the API key is not valid');
    return { id: producer.name, kind: 'producer', roles: [producer.role] };
  }
  const token = sessionTokenOf(request);
  if (!token) return undefined;
  const { sessions } = identity();
  const result = await sessions.check(token, {
    ip: request.sourceIp,
    userAgent: request.userAgent,
  });
  if (!result.ok) {
    throw new HttpError(401, result.reason, MESSAGES[result.reason] ?? 'sign in again');
  }
  return {
    id: result.session.userId,
    kind: 'user',
    roles: result.session.roles,
    sessionId: result.session.id,
    freshMfa: sessions.hasFreshMfa(result.session),
  };
}
