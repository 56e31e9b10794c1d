import type { Context } from 'aws-lambda';
import { httpHandler, type HttpResult } from '../../platform/http/api';
import { httpOptions } from '../../platform/http/options';
import type { HttpRequest } from '../../platform/http/event';
import { badRequest, notFound, unauthorized } from '../../platform/http/errors';
import { Auth, type ClientContext } from '../auth';
import { identity, spendIdToken } from '../context';
import { type Credentials, UserError, cleanName, nameFromEmail, publicUser } from '../users';
import type { FederatedIdentity, User } from '../model';
import { enrolmentPage } from '../pages';
import { SessionLimitError } from '../sessions';
import { PasswordHashingBusy } from '../passwords';
import {
  SAML_REQUEST_COOKIE,
  authenticateRequest,
  clearedSessionCookie,
  cookieOf,
  samlRequestCookie,
  sessionCookie,
  sessionTokenOf,
} from '../authenticate';
import { OidcError } from '../oidc';
import { REQUEST_TTL_MS, SamlError } from '../saml';
import { HttpError } from '../../platform/http/errors';

type Route = (request: HttpRequest, auth: Auth, ctx: ClientContext) => Promise<HttpResult>;

/** Sign-in, MFA, step-up, sign-out and the current session. */
const ROUTES: Record<string, Route> = {
  'GET /enrol': async () => enrolmentPage(),
  'POST /v1/auth/login': async (request, auth, ctx) => {
    await auth.throttle(ctx, 'login');
    const body = objectBody(request);
    return { status: 200, body: await auth.login(body.email, body.password, ctx) };
  },
  'POST /v1/auth/enrol': async (request, auth, ctx) => {
    await auth.throttle(ctx, 'enrol');
    const body = onlyKeys(objectBody(request), [
      'token',
      'password',
      'email',
      'name',
      'employeeId',
      'npi',
    ]);
    return { status: 200, body: await auth.enrol(body, ctx) };
  },
  'POST /v1/auth/mfa': async (request, auth, ctx) => {
    await auth.throttle(ctx, 'mfa');
    return signedIn(await auth.mfa(objectBody(request), ctx));
  },
  'POST /v1/auth/oidc': async (request, auth, ctx) => {
    await auth.throttle(ctx, 'oidc');
    const { idToken } = objectBody(request);
    if (typeof idToken !== 'string') throw badRequest('idToken', 'is required');
    const who = await federated(() => identity().oidc.verify(idToken), 'oidc', auth, ctx);
    if (!(await spendIdToken(idToken, who.validUntil))) {
      await auth.federatedRefused(ctx, 'oidc', 'replayed');
      throw new HttpError(401, 'invalid_token', 'replayed');
    }
    const user = await provision(who, 'oidc', auth, ctx);
    return federatedResult(await auth.federated(user, 'oidc', who.multiFactor, ctx));
  },
  'GET /v1/auth/saml/login': async (_request, auth, ctx) => {
    await auth.throttle(ctx, 'saml');
    const { url, requestId } = await federated(
      () => samlVerifier().loginRedirect(),
      'saml',
      auth,
      ctx,
    );
    return {
      status: 302,
      headers: {
        location: url,
        'set-cookie': samlRequestCookie(requestId, REQUEST_TTL_MS / 1000),
        'cache-control': 'no-store',
      },
    };
  },
  'POST /v1/auth/saml': async (request, auth, ctx) => {
    await auth.throttle(ctx, 'saml');
    const saml = samlVerifier();
    const response = samlResponseOf(request);
    const requestId = cookieOf(request, SAML_REQUEST_COOKIE);
    const who = await federated(
      () => saml.verifyPostResponse(response, requestId),
      'saml',
      auth,
      ctx,
    );
    const user = await provision(who, 'saml', auth, ctx);
    return federatedResult(await auth.federated(user, 'saml', false, ctx));
  },
  'POST /v1/auth/step-up': async (request, auth, ctx) => {
    await auth.throttle(ctx, 'step-up');
    const token = sessionTokenOf(request);
    const userId = await stepUpCandidate(request, token);
    await auth.stepUp(token, userId, objectBody(request).code, ctx);
    return { status: 200, body: { stepUpAt: new Date().toISOString() } };
  },
  'POST /v1/auth/logout': async (request, auth, ctx) => {
    const token = sessionTokenOf(request);
    const principal = await requireUser(request);
    // The session service audits the logout itself.
    await identity().sessions.end(token as string, 'logout', principal.id);
    return {
      status: 200,
      body: { signedOut: true },
      headers: { 'set-cookie': clearedSessionCookie() },
    };
  },
  'GET /v1/auth/session': async (request) => {
    const principal = await requireUser(request);
    const user = await identity().users.get(principal.id);
    if (!user) throw notFound('the signed-in user');
    return {
      status: 200,
      body: {
        sessionId: principal.sessionId,
        freshMfa: principal.freshMfa,
        user: publicUser(user),
      },
    };
  },
};

export async function auth(request: HttpRequest, _context: Context): Promise<HttpResult> {
  const route = ROUTES[`${request.method} ${request.path.replace(/\/$/, '')}`];
  if (!route) throw notFound(`the route ${request.method} ${request.path}`);
  const ctx = { ip: request.sourceIp, userAgent: request.userAgent };
  try {
    return await route(request, new Auth(identity()), ctx);
  } catch (error) {
    if (error instanceof UserError) {
      throw new HttpError(error.status, 'invalid_request', error.message, error.field);
    }
    if (error instanceof PasswordHashingBusy) {
      throw new HttpError(
        503,
        'busy',
        'too many sign-ins are being checked; try again shortly',
        undefined,
        { 'retry-after': '2' },
      );
    }
    if (error instanceof SessionLimitError) {
      throw new HttpError(
        409,
        'session_limit',
        'too many sessions are open; sign out of one first',
      );
    }
    throw error;
  }
}

function onlyKeys(body: Record<string, unknown>, allowed: string[]): Record<string, unknown> {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw badRequest(key, 'is not a known field');
  }
  return body;
}

function objectBody(request: HttpRequest): Record<string, unknown> {
  if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
    throw badRequest('body', 'must be a JSON object');
  }
  return request.body as Record<string, unknown>;
}

/** The signed-in user, or the user of a session that is waiting for step-up. */
async function stepUpCandidate(request: HttpRequest, token: string | undefined): Promise<string> {
  try {
    return (await requireUser(request)).id;
  } catch (error) {
    const waiting = error instanceof HttpError && error.code === 'step_up_required' && token;
    const owner = waiting ? await identity().sessions.ownerOf(token) : undefined;
    if (!owner) throw error;
    return owner;
  }
}

async function requireUser(request: HttpRequest) {
  const principal = await authenticateRequest(request);
  if (!principal || principal.kind !== 'user') throw unauthorized('sign in first');
  return principal;
}

interface SignedIn {
  token: string;
  session: { id: string };
  user: unknown;
  recoveryCodes?: string[];
}

/** The token goes in the body for API clients (Bearer) and in the cookie for the console. */
function signedIn(result: SignedIn): HttpResult {
  const maxAge = Math.floor(identity().sessions.policy.absoluteMs / 1000);
  return {
    status: 200,
    body: {
      status: 'signed_in',
      token: result.token,
      sessionId: result.session.id,
      user: result.user,
      recoveryCodes: result.recoveryCodes,
    },
    headers: { 'set-cookie': sessionCookie(result.token, maxAge) },
  };
}

function federatedResult(result: Awaited<ReturnType<Auth['federated']>>): HttpResult {
  return result.status === 'signed_in' ? signedIn(result) : { status: 200, body: result };
}

/**
 * Runs a verifier. A refused token or assertion is audited and counted against the address
 * like a wrong password; one the verifier could not judge (503) is neither.
 */
async function federated<T>(
  verify: () => Promise<T>,
  method: 'oidc' | 'saml',
  auth: Auth,
  ctx: ClientContext,
): Promise<T> {
  try {
    return await verify();
  } catch (error) {
    if (error instanceof OidcError || error instanceof SamlError) {
      const { reason } = error;
      if (error.status === 503) {
        throw new HttpError(503, 'identity_provider_unavailable', reason);
      }
      await auth.federatedRefused(ctx, method, reason);
      throw new HttpError(401, 'invalid_token', reason);
    }
    throw error;
  }
}

/**
 * The account a federated sign-in acts as. Provisioned accounts follow the identity provider: their roles are read again from the
 * verified claims at every sign-in, so removing a group removes the access.
 */
async function provision(
  who: FederatedIdentity,
  method: 'oidc' | 'saml',
  auth: Auth,
  ctx: ClientContext,
): Promise<User & Credentials> {
  const { users, provisioning } = identity();
  const existing = await users.byFederated(who.issuer, who.subject);
  if (existing) {
    if (existing.status === 'disabled' || existing.status === 'locked') {
      await auth.audit(existing.id, 'login_refused', 'failure', ctx, `account ${existing.status}`);
      throw unauthorized('the account is locked or disabled');
    }
    return provisioning === 'auto' ? syncRoles(existing, who, auth, ctx) : existing;
  }
  if (provisioning === 'existing') return linkExisting(who, method, auth, ctx);
  // An address the provider does not vouch for would claim that address for whoever holds it.
  if (!who.email || !who.emailVerified || who.roles.length === 0) {
    throw await notProvisioned(auth, ctx, method, 'no verified email or mapped role');
  }
  let created;
  try {
    ({ user: created } = await users.create({
      email: who.email,
      name: (who.name && cleanName(who.name)) || nameFromEmail(who.email),
      roles: who.roles,
      federated: { issuer: who.issuer, subject: who.subject },
    }));
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    // Whether some account holds this email is not the identity provider's user's business.
    if (error.status === 409) throw await notProvisioned(auth, ctx, method, 'email taken');
    await auth.federatedRefused(ctx, method, `not provisioned: ${error.field}`, false);
    throw new HttpError(
      403,
      'not_provisioned',
      `the identity provider's claims cannot make an account: ${error.message}`,
      error.field,
    );
  }
  await auth.audit(created.id, 'provisioned', 'success', ctx, method);
  const user = await users.get(created.id);
  if (!user) throw notFound('the provisioned user');
  return user;
}

/** Audits a federated person Vigil has no account for, and returns the 403 to throw. */
async function notProvisioned(
  auth: Auth,
  ctx: ClientContext,
  method: 'oidc' | 'saml',
  why: string,
): Promise<HttpError> {
  await auth.federatedRefused(ctx, method, `not provisioned: ${why}`, false);
  return new HttpError(403, 'not_provisioned', NOT_PROVISIONED);
}

const NOT_PROVISIONED =
  'this identity provider account has no Vigil access: ask a security officer';

async function syncRoles(
  user: User & Credentials,
  who: FederatedIdentity,
  auth: Auth,
  ctx: ClientContext,
): Promise<User & Credentials> {
  const same =
    who.roles.length === user.roles.length && who.roles.every((role) => user.roles.includes(role));
  let current = user;
  if (!same) {
    // No mapped group left is the provider taking the access away: the account keeps no role.
    current = await identity().users.update(user.id, { roles: [...new Set(who.roles)] });
    // Sessions carry the roles they were made with; none may outlive a change of access.
    await identity().sessions.revokeAll(user.id, 'system');
    await auth.audit(user.id, 'roles_synced', 'success', ctx, who.roles.join(' ') || 'none');
  }
  if (current.roles.length === 0) {
    await auth.audit(user.id, 'login_refused', 'failure', ctx, 'no mapped role');
    throw new HttpError(403, 'not_provisioned', NOT_PROVISIONED);
  }
  return current;
}

/**
 * With VIGIL_FEDERATED_PROVISIONING=existing, an officer creates the account first; the first
 * federated sign-in with the same email, verified by the provider, links it. Only an account
 * nobody has used yet is linked: one with a password or an authenticator belongs to someone.
 */
async function linkExisting(
  who: FederatedIdentity,
  method: 'oidc' | 'saml',
  auth: Auth,
  ctx: ClientContext,
): Promise<User & Credentials> {
  const users = identity().users;
  const user = who.email && who.emailVerified ? await users.byEmail(who.email) : undefined;
  if (!user || !(await users.linkFederated(user.id, who.issuer, who.subject))) {
    throw await notProvisioned(auth, ctx, method, 'no account to link');
  }
  await auth.audit(user.id, 'federated_link', 'success', ctx, `${who.issuer} ${who.subject}`);
  return (await users.get(user.id)) ?? user;
}

function samlVerifier() {
  const { saml } = identity();
  if (!saml) throw new HttpError(503, 'saml_not_configured', 'SAML sign-in is not configured');
  return saml;
}

function samlResponseOf(request: HttpRequest): string {
  const body = request.body as Record<string, unknown> | undefined;
  if (body && typeof body.SAMLResponse === 'string') return body.SAMLResponse;
  throw badRequest('SAMLResponse', 'is required');
}

export const handler = httpHandler(auth, () => ({
  ...httpOptions(),
  acceptForm: ['POST /v1/auth/saml'],
}));
