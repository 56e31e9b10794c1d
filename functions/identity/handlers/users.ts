import type { Context } from 'aws-lambda';
import { httpHandler, type HttpResult } from '../../platform/http/api';
import { httpOptions } from '../../platform/http/options';
import type { HttpRequest } from '../../platform/http/event';
import { HttpError, badRequest, notFound } from '../../platform/http/errors';
import { contentRange, parseListParams } from '../../platform/http/list-params';
import { authenticateRequest } from '../authenticate';
import { identity } from '../context';
import { PERSON_ROLES, type PersonRole, type User } from '../model';
import { LAST_OFFICER, type ProfileChange, UserError, publicUser } from '../users';

/** Only a security officer manages users; changes need a fresh MFA (step-up). */
const OFFICERS = ['security_officer'];

type Route = (request: HttpRequest, params: string[]) => Promise<HttpResult>;
const WRITE = new Set(['POST', 'PUT', 'DELETE']);

const ROUTES: Array<[string, RegExp, Route]> = [
  ['GET', /^\/v1\/users$/, list],
  ['POST', /^\/v1\/users$/, create],
  ['GET', /^\/v1\/users\/([^/]+)$/, one],
  ['PUT', /^\/v1\/users\/([^/]+)$/, update],
  ['POST', /^\/v1\/users\/([^/]+)\/lock$/, (r, p) => setStatus(r, p, 'locked')],
  ['POST', /^\/v1\/users\/([^/]+)\/unlock$/, (r, p) => setStatus(r, p, 'active')],
  ['POST', /^\/v1\/users\/([^/]+)\/reset-mfa$/, resetMfa],
  ['GET', /^\/v1\/users\/([^/]+)\/sessions$/, sessions],
  ['DELETE', /^\/v1\/users\/([^/]+)\/sessions\/([^/]+)$/, revokeSession],
];

export async function users(request: HttpRequest, _context: Context): Promise<HttpResult> {
  for (const [method, pattern, route] of ROUTES) {
    const match = pattern.exec(request.path.replace(/\/$/, ''));
    if (match && method === request.method) {
      const params = match.slice(1).map(decodeSegment);
      // Ids are UUIDs: anything else names no user, and is never sent to the store.
      const [id] = params;
      if (id !== undefined && !UUID.test(id)) throw notFound(`the user ${id.slice(0, 64)}`);
      if (WRITE.has(method) && !request.principal?.freshMfa) {
        throw new HttpError(
          401,
          'step_up_required',
          'confirm with a fresh MFA code at /v1/auth/step-up',
        );
      }
      try {
        return await route(request, params);
      } catch (error) {
        if (error instanceof UserError)
          throw new HttpError(error.status, 'invalid_request', error.message, error.field);
        throw error;
      }
    }
  }
  throw notFound(`the route ${request.method} ${request.path}`);
}

async function list(request: HttpRequest): Promise<HttpResult> {
  const params = parseListParams(request.query, {
    sortable: ['email', 'name', 'status', 'createdAt'],
    filterable: ['id', 'q', 'role', 'status'],
    defaultSort: { field: 'email', order: 'ASC' },
  });
  const { filter, sort, range } = params;
  const ids =
    filter.id === undefined
      ? undefined
      : (Array.isArray(filter.id) ? filter.id : [filter.id]).map(String);
  const q = typeof filter.q === 'string' ? filter.q.toLowerCase() : undefined;
  const all = (await identity().users.list()).filter(
    (u) =>
      (!ids || ids.includes(u.id)) &&
      (!q || u.email.includes(q) || u.name.toLowerCase().includes(q)) &&
      (filter.role === undefined || u.roles.includes(filter.role as PersonRole)) &&
      (filter.status === undefined || u.status === filter.status),
  );
  const direction = sort.order === 'ASC' ? 1 : -1;
  const key = (u: User) => String(u[sort.field as keyof User] ?? '');
  all.sort((a, b) => (key(a) < key(b) ? -direction : key(a) > key(b) ? direction : 0));
  const page = all.slice(range.start, range.end + 1);
  return {
    status: 200,
    body: page,
    headers: { 'content-range': contentRange('users', range.start, page.length, all.length) },
  };
}

const CREATE_KEYS = ['kind', 'email', 'name', 'employeeId', 'npi', 'roles'];
const UPDATE_KEYS = ['name', 'employeeId', 'npi', 'roles'];

/** Unknown keys are refused by name, so a typo or a smuggled field is never silently dropped. */
function onlyKeys(body: Record<string, unknown>, allowed: string[]): Record<string, unknown> {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw badRequest(key, 'is not a field you can set here');
  }
  return body;
}

async function create(request: HttpRequest): Promise<HttpResult> {
  const body = onlyKeys(objectBody(request), CREATE_KEYS);
  const { user, enrolmentToken } = await identity().users.create({
    kind: (body.kind ?? 'person') as 'person',
    email: requiredString(body, 'email'),
    name: requiredString(body, 'name'),
    employeeId: optionalString(body, 'employeeId'),
    npi: optionalString(body, 'npi'),
    roles: rolesOf(body.roles),
  });
  await audit(request, 'user_created', user.id);
  return { status: 201, body: { ...user, enrolmentUrl: enrolmentUrl(enrolmentToken) } };
}

async function one(_request: HttpRequest, [id]: string[]): Promise<HttpResult> {
  const user = await identity().users.get(id as string);
  if (!user) throw notFound(`user ${id}`);
  return { status: 200, body: publicUser(user) };
}

async function update(request: HttpRequest, [id]: string[]): Promise<HttpResult> {
  const body = onlyKeys(objectBody(request), UPDATE_KEYS);
  // An empty employee id or NPI (null or "") clears it.
  const change: ProfileChange = {};
  if (body.name !== undefined) change.name = requiredString(body, 'name');
  if (body.roles !== undefined) change.roles = rolesOf(body.roles);
  if (body.employeeId !== undefined) change.employeeId = optionalString(body, 'employeeId');
  if (body.npi !== undefined) change.npi = optionalString(body, 'npi');
  const before = await identity().users.get(id as string);
  const user = publicUser(await identity().users.change(id as string, change));
  // Sessions carry the roles they were made with: a change of roles ends them.
  const rolesChanged =
    before?.roles.length !== user.roles.length ||
    user.roles.some((role) => !before.roles.includes(role));
  if (rolesChanged)
    await identity().sessions.revokeAll(id as string, request.principal?.id ?? 'unknown');
  await audit(request, 'user_updated', id as string);
  return { status: 200, body: user };
}

async function setStatus(
  request: HttpRequest,
  [id]: string[],
  status: 'locked' | 'active',
): Promise<HttpResult> {
  if (id === request.principal?.id) {
    throw new HttpError(
      403,
      'forbidden',
      'another security officer must lock or unlock your account',
    );
  }
  const { users } = identity();
  const user =
    status === 'locked'
      ? await users.setStatus(id as string, 'locked', 'officer')
      : await users.unlock(id as string);
  if (status === 'locked' && user.roles.includes('security_officer')) {
    // Two officers locking each other at once: the one who finds no officer left undoes it.
    if (!(await users.otherActiveOfficer(id as string))) {
      await users.unlock(id as string);
      throw new HttpError(409, 'invalid_request', LAST_OFFICER, 'id');
    }
  }
  if (status === 'locked')
    await identity().sessions.revokeAll(id as string, request.principal?.id ?? 'unknown');
  await audit(request, status === 'locked' ? 'lock' : 'unlock', id as string);
  return { status: 200, body: user };
}

/**
 * Clears the authenticator and recovery codes; the person enrols a new one through the link
 * returned, proving themselves with their password, which the link does not change. With
 * `resetPassword: true` (a person who lost both) the password goes too and the link sets a new
 * one: whoever holds that link can then become the person, so it must reach only them.
 */
async function resetMfa(request: HttpRequest, [id]: string[]): Promise<HttpResult> {
  if (id === request.principal?.id) {
    throw new HttpError(403, 'forbidden', "another security officer must reset your account's MFA");
  }
  const body = onlyKeys(request.body === undefined ? {} : objectBody(request), ['resetPassword']);
  if (body.resetPassword !== undefined && typeof body.resetPassword !== 'boolean') {
    throw badRequest('resetPassword', 'must be true or false');
  }
  const withPassword = body.resetPassword === true;
  const current = await identity().users.get(id as string);
  if (!current) throw notFound(`the user ${id}`);
  if (withPassword && current.federated) {
    throw badRequest('resetPassword', 'this account signs in through an identity provider');
  }
  const credentials = [
    'totpSecret',
    'totpPending',
    'totpLastStep',
    'recoveryHashes',
    'mfaEnrolledAt',
  ];
  const user = await identity().users.update(
    id as string,
    {
      mfaResetAt: new Date().toISOString(),
      // Active becomes invited until the link is used; a lock or a disabling stays.
      ...(withPassword && current.status === 'active' && { status: 'invited' }),
    },
    withPassword ? [...credentials, 'passwordHash'] : credentials,
  );
  await identity().sessions.revokeAll(id as string, request.principal?.id ?? 'unknown');
  await audit(request, withPassword ? 'mfa_and_password_reset' : 'mfa_reset', id as string);
  const token = await identity().users.newEnrolment(id as string);
  return { status: 200, body: { ...publicUser(user), enrolmentUrl: enrolmentUrl(token) } };
}

async function sessions(_request: HttpRequest, [id]: string[]): Promise<HttpResult> {
  const list = await identity().sessions.listForUser(id as string);
  return {
    status: 200,
    body: list,
    headers: { 'content-range': contentRange('sessions', 0, list.length, list.length) },
  };
}

async function revokeSession(request: HttpRequest, [id, sessionId]: string[]): Promise<HttpResult> {
  const { sessions } = identity();
  // The session service audits the revocation itself. A session that had ended already keeps
  // the ending it had, and the answer says so.
  const held = await sessions.revokeById(
    id as string,
    sessionId as string,
    request.principal?.id ?? 'unknown',
  );
  if (!held) throw notFound(`session ${sessionId}`);
  // react-admin's delete expects the record back: the session as it is stored now.
  const session = (await sessions.listForUser(id as string)).find((s) => s.id === sessionId);
  if (!session) throw notFound(`session ${sessionId}`);
  return { status: 200, body: session };
}

function objectBody(request: HttpRequest): Record<string, unknown> {
  if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
    throw badRequest('body', 'must be a JSON object');
  }
  return request.body as Record<string, unknown>;
}

/** A text field as sent: never a number, list or object turned into text. */
function requiredString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (value === undefined || value === null || value === '') throw badRequest(field, 'is required');
  if (typeof value !== 'string') throw badRequest(field, 'must be a string');
  return value;
}

/** As `requiredString`, but null or "" means none. */
function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw badRequest(field, 'must be a string');
  return value;
}

function rolesOf(value: unknown): PersonRole[] {
  if (!Array.isArray(value))
    throw badRequest('roles', `must be a list of: ${PERSON_ROLES.join(', ')}`);
  if (!value.every((role) => typeof role === 'string')) {
    throw badRequest('roles', `must be a list of: ${PERSON_ROLES.join(', ')}`);
  }
  return value as PersonRole[];
}

export function enrolmentUrl(token: string): string {
  return `${identity().publicUrl}/enrol#token=${token}`;
}

async function audit(request: HttpRequest, event: string, userId: string, sessionId?: string) {
  await identity().audit({
    actorId: request.principal?.id ?? 'unknown',
    action: event.includes('created') ? 'create' : 'update',
    event,
    resourceType: sessionId ? 'Session' : 'User',
    resourceId: sessionId ?? userId,
    outcome: 'success',
    ipAddress: request.sourceIp,
    userAgent: request.userAgent,
    sessionId: request.principal?.sessionId,
  });
}

export const handler = httpHandler(users, () =>
  httpOptions(OFFICERS, { authenticate: authenticateRequest }),
);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest('path', 'the path has a malformed percent-encoded character');
  }
}
