import crypto from 'node:crypto';
import {
  ConditionFailedError,
  type Clock,
  type Item,
  type Key,
  type Store,
} from '../platform/ports';
import { type IdentityAudit, type IdentityAuditEvent, keys, sessionsOfUser } from './model';
import { DEFAULT_SESSION_POLICY, type SessionPolicy, sessionPolicyFrom } from './session-policy';

export { DEFAULT_SESSION_POLICY, type SessionPolicy, sessionPolicyFrom };

/**
 * Server-side sessions. The client holds an opaque random token and the store keeps only its
 * SHA-256, so a copy of the table cannot be replayed as sessions. Every request reads the
 * session, so logout and revocation act at once, and inactivity ends it: automatic logoff,
 * 45 CFR 164.312(a)(2)(iii).
 *
 * The store offers single-item conditional writes only. Every state change is therefore one
 * conditional update of the session's own item, and a change that lost a race is judged again
 * on fresh data, so each ending is written, and audited, exactly once.
 */

export type SessionEndReason =
  'expired_idle' | 'expired_absolute' | 'revoked' | 'logout' | 'limit' | 'binding';

export interface Session {
  id: string;
  userId: string;
  roles: string[];
  createdAt: string;
  lastSeenAt: string;
  mfaAt?: string;
  method: 'password' | 'oidc' | 'saml';
  ip?: string;
  /** SHA-256 of the user agent the session was bound to. */
  deviceHash?: string;
  endedAt?: string;
  endReason?: SessionEndReason;
}

export interface ClientContext {
  ip?: string;
  userAgent?: string;
}

export type SessionCheckFailure = 'missing' | 'unknown' | SessionEndReason | 'step_up_required';

export type SessionCheck =
  { ok: true; session: Session } | { ok: false; reason: SessionCheckFailure };

/** 256 bits from the system CSPRNG: far beyond guessing, and opaque to the client. */
export const TOKEN_BYTES = 32;

/**
 * A user's sessions are listed through small registry items in the table itself (pk
 * sessionsOfUser(id), sk createdAt#id), read consistently. The session item carries no index
 * keys, so recording activity is one plain conditional write.
 */
const registryKey = (session: Session) => ({
  pk: sessionsOfUser(session.userId),
  sk: `${session.createdAt}#${session.id}`,
});

/** A change that keeps losing races this often is reported rather than retried forever. */
const MAX_ATTEMPTS = 5;

/** The audit code of each way a session ends. */
const END_EVENTS: Record<SessionEndReason, string> = {
  expired_idle: 'session_expired',
  expired_absolute: 'session_expired',
  logout: 'logout',
  revoked: 'session_revoked',
  limit: 'session_limit',
  binding: 'session_binding',
};

/** Refused sign-in: the user already holds as many sessions as the policy allows. */
export class SessionLimitError extends Error {
  constructor(readonly limit: number) {
    super(`at most ${limit} sessions may be open at once: sign out of one first`);
    this.name = 'SessionLimitError';
  }
}

/** The session behind a token has ended or never existed. */
export class SessionNotActiveError extends Error {
  constructor() {
    super('the session is not active: sign in again');
    this.name = 'SessionNotActiveError';
  }
}

/** A session with the key of its item, which holds the token hash and never leaves here. */
interface Held {
  key: Key;
  session: Session;
}

/** A judgement made on data another request changed meanwhile; it is made again. */
const RETRY = Symbol('retry');
type Retry = typeof RETRY;

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
const keyOf = (token: string) => keys.session(sha256(token));
const deviceHashOf = (userAgent: string | undefined) =>
  userAgent === undefined ? undefined : sha256(userAgent);
const refused = (reason: SessionCheckFailure): SessionCheck => ({ ok: false, reason });

export class SessionService {
  constructor(
    private readonly store: Store,
    private readonly table: string,
    private readonly clock: Clock,
    readonly policy: SessionPolicy,
    private readonly audit: IdentityAudit,
  ) {}

  async create(
    user: { id: string; roles: string[] },
    ctx: ClientContext & { mfa: boolean; method: Session['method'] },
  ): Promise<{ token: string; session: Session }> {
    if (this.policy.onLimit === 'refuse') await this.refuseAtLimit(user.id, ctx);

    const token = crypto.randomBytes(TOKEN_BYTES).toString('base64url');
    const at = this.clock.now().toISOString();
    const session = defined<Session>({
      id: crypto.randomUUID(),
      userId: user.id,
      roles: [...user.roles],
      createdAt: at,
      lastSeenAt: at,
      mfaAt: ctx.mfa ? at : undefined,
      method: ctx.method,
      ip: ctx.ip,
      deviceHash: deviceHashOf(ctx.userAgent),
    });
    const held: Held = { key: keyOf(token), session };
    // The registry entry first: one pointing at no session is skipped; the reverse would hide one.
    await this.store.put(this.table, {
      ...registryKey(held.session),
      sessionPk: held.key.pk,
      expiresAt: this.itemOf(held).expiresAt,
    });
    await this.store.put(this.table, this.itemOf(held), { ifAbsent: true });
    await this.record('session_created', 'create', session, user.id, ctx);

    await this.enforceLimit(held, ctx);
    return { token, session };
  }

  /**
   * Judges one request: one consistent read, plus a write when activity is due to be recorded
   * (see `touchMs`). Limits are checked on every read rather than left to the table's TTL,
   * which deletes late and not at all on the embedded store.
   */
  async check(token: string | undefined, ctx: ClientContext): Promise<SessionCheck> {
    if (!token) return refused('missing');
    const key = keyOf(token);
    return this.retrying(async () => {
      const held = await this.read(key);
      return held ? this.judge(held, ctx) : refused('unknown');
    });
  }

  /**
   * The user of a live session, whatever client presents it: only for the step-up route, which
   * must be reachable when a binding mismatch asks for step-up. It proves nothing by itself.
   */
  async ownerOf(token: string): Promise<string | undefined> {
    const held = await this.read(keyOf(token));
    if (!held || held.session.endedAt || this.overdue(held.session, this.clock.now()))
      return undefined;
    return held.session.userId;
  }

  /**
   * Records a fresh MFA proof. Under the step-up policy, `client` is the client that proved it
   * and the session is bound to it anew: that is how a step-up answers a binding mismatch.
   * Under the end policy a mismatch has already ended the session, so nothing is rebound.
   */
  async markMfa(token: string, client?: ClientContext): Promise<void> {
    const key = keyOf(token);
    await this.retrying(async () => {
      const held = await this.read(key);
      if (!held || held.session.endedAt) throw new SessionNotActiveError();
      const now = this.clock.now();
      const expiry = this.overdue(held.session, now);
      if (expiry) {
        if (await this.endHeld(held, expiry, held.session.userId, client ?? {})) {
          throw new SessionNotActiveError();
        }
        return RETRY;
      }
      const at = now.toISOString();
      const rebind = client && this.policy.onBindingMismatch === 'step-up';
      const rebound = rebind ? this.bindingChange(client) : { set: {}, remove: [] };
      const written = await this.write(held, {
        set: { ...rebound.set, mfaAt: at, lastSeenAt: at },
        remove: rebound.remove,
      });
      return written ?? RETRY;
    });
  }

  hasFreshMfa(session: Session): boolean {
    if (session.mfaAt === undefined) return false;
    return this.clock.now().getTime() - Date.parse(session.mfaAt) <= this.policy.stepUpMs;
  }

  /** Ends the session behind a token; ending an ended or unknown session changes nothing. */
  async end(token: string, reason: 'logout' | 'revoked', actorId: string): Promise<void> {
    await this.finish(keyOf(token), reason, actorId);
  }

  /** False when the user holds no session with this id. */
  async revokeById(userId: string, sessionId: string, actorId: string): Promise<boolean> {
    for await (const held of this.heldBy(userId)) {
      if (held.session.id !== sessionId) continue;
      await this.finish(held.key, 'revoked', actorId);
      return true;
    }
    return false;
  }

  /** Ends every live session of the user; returns how many this call ended. */
  async revokeAll(userId: string, actorId: string): Promise<number> {
    let ended = 0;
    for await (const held of this.heldBy(userId)) {
      if (held.session.endedAt) continue;
      if (await this.finish(held.key, 'revoked', actorId)) ended += 1;
    }
    return ended;
  }

  /**
   * The user's sessions, newest first, ended ones included until the table's TTL removes
   * them. A session whose limit has passed unseen is recorded as expired on the way.
   */
  async listForUser(userId: string): Promise<Session[]> {
    const all = await this.settledSessionsOf(userId);
    return all.map((held) => held.session).reverse();
  }

  private async judge(held: Held, ctx: ClientContext): Promise<SessionCheck | Retry> {
    const { session } = held;
    if (session.endedAt) return refused(session.endReason ?? 'revoked');

    const now = this.clock.now();
    const expiry = this.overdue(session, now);
    if (expiry) {
      return (await this.endHeld(held, expiry, session.userId, ctx)) ? refused(expiry) : RETRY;
    }

    if (!this.bound(session, ctx)) {
      if (this.policy.onBindingMismatch === 'step-up') return refused('step_up_required');
      return (await this.endHeld(held, 'binding', session.userId, ctx))
        ? refused('binding')
        : RETRY;
    }

    // Activity is held on the server, so every tab and client of the session shares it.
    if (now.getTime() - Date.parse(session.lastSeenAt) < this.policy.touchMs) {
      return { ok: true, session };
    }
    // Of two requests recording activity at once, one writes; the other reads it afresh.
    const touched = await this.write(
      held,
      { set: { lastSeenAt: now.toISOString() } },
      { lastSeenAt: session.lastSeenAt },
    );
    return touched ? { ok: true, session: touched.session } : RETRY;
  }

  /**
   * The limit a session has passed, if any. The absolute lifetime is named first; each limit
   * is inclusive, so a request at exactly the limit is still served.
   */
  private overdue(session: Session, now: Date): SessionEndReason | undefined {
    const at = now.getTime();
    if (at - Date.parse(session.createdAt) > this.policy.absoluteMs) return 'expired_absolute';
    if (at - Date.parse(session.lastSeenAt) > this.policy.idleMs) return 'expired_idle';
    return undefined;
  }

  /**
   * IP binding catches a token replayed from elsewhere but also ends sessions of clients whose
   * address changes (mobile networks, some proxies). Device binding compares the user agent,
   * which the client controls: it only stops a thief who does not copy it.
   */
  private bound(session: Session, ctx: ClientContext): boolean {
    switch (this.policy.binding) {
      case 'ip':
        return session.ip === ctx.ip;
      case 'device':
        return session.deviceHash === deviceHashOf(ctx.userAgent);
      case 'none':
        return true;
    }
  }

  private bindingChange(client: ClientContext): { set: Item; remove: string[] } {
    const fields: Item = { ip: client.ip, deviceHash: deviceHashOf(client.userAgent) };
    return {
      set: defined(fields),
      remove: Object.keys(fields).filter((name) => fields[name] === undefined),
    };
  }

  private async refuseAtLimit(userId: string, ctx: ClientContext): Promise<void> {
    const live = await this.live(userId);
    if (live.length < this.policy.maxConcurrent) return;
    await this.audit({
      actorId: userId,
      action: 'create',
      event: 'session_refused',
      resourceType: 'User',
      resourceId: userId,
      outcome: 'failure',
      reason: 'limit',
      ipAddress: ctx.ip,
      userAgent: ctx.userAgent,
    });
    throw new SessionLimitError(this.policy.maxConcurrent);
  }

  /**
   * Counted after the new session is written, so sign-ins racing each other all see one
   * another. Under `end-oldest` they converge on ending the same oldest sessions. Under
   * `refuse` a newcomer over the limit yields; when two race, both may yield, which keeps the
   * limit at the cost of one more sign-in. On DynamoDB the index is eventually consistent: a
   * sign-in within the same instant may be missed by both counts, and the next one corrects it.
   */
  private async enforceLimit(held: Held, ctx: ClientContext): Promise<void> {
    const live = await this.live(held.session.userId);
    const excess = live.length - this.policy.maxConcurrent;
    if (excess <= 0) return;

    if (this.policy.onLimit === 'refuse') {
      await this.endHeld(held, 'limit', held.session.userId, ctx);
      throw new SessionLimitError(this.policy.maxConcurrent);
    }
    const others = live.filter((other) => other.session.id !== held.session.id);
    for (const oldest of others.slice(0, excess)) {
      await this.endHeld(oldest, 'limit', oldest.session.userId, ctx);
    }
  }

  /** Live sessions of a user, oldest first. */
  private async live(userId: string): Promise<Held[]> {
    const all = await this.settledSessionsOf(userId);
    return all.filter((held) => !held.session.endedAt);
  }

  /** Every session of a user, oldest first, with the expiry of overdue ones recorded. */
  private async settledSessionsOf(userId: string): Promise<Held[]> {
    const settled: Held[] = [];
    for await (const held of this.heldBy(userId)) {
      const current = await this.settle(held);
      if (current) settled.push(current);
    }
    return settled;
  }

  /**
   * Records the expiry of a session no request has seen since its limit passed. The index may
   * lag the table: a stale lastSeenAt fails the conditional write, and the fresh item decides.
   */
  private settle(listed: Held): Promise<Held | undefined> {
    let held = listed;
    return this.retrying(async () => {
      const expiry = held.session.endedAt
        ? undefined
        : this.overdue(held.session, this.clock.now());
      if (!expiry) return held;
      const ended = await this.endHeld(held, expiry, held.session.userId, {});
      if (ended) return ended;
      const fresh = await this.read(held.key);
      if (!fresh) return undefined;
      held = fresh;
      return RETRY;
    });
  }

  /**
   * Ends a session on behalf of `actorId`, and tells whether this call did, meaning no other
   * request ended it first. A session already past a limit is recorded as expired instead.
   */
  private finish(
    key: Key,
    reason: 'logout' | 'revoked',
    actorId: string,
  ): Promise<SessionEndReason | undefined> {
    return this.retrying(async () => {
      const held = await this.read(key);
      if (!held || held.session.endedAt) return undefined;
      const expiry = this.overdue(held.session, this.clock.now());
      const ending = expiry ?? reason;
      const actor = expiry ? held.session.userId : actorId;
      return (await this.endHeld(held, ending, actor, {})) ? ending : RETRY;
    });
  }

  /**
   * The one place a session ends: a conditional write on `endedAt` being absent, so racing
   * requests write, and audit, an ending once. Undefined when another request got there first.
   */
  private async endHeld(
    held: Held,
    reason: SessionEndReason,
    actorId: string,
    ctx: ClientContext,
  ): Promise<Held | undefined> {
    const endedAt = this.clock.now().toISOString();
    // An idle expiry must not end a session that another request has just used.
    const seen = reason === 'expired_idle' ? { lastSeenAt: held.session.lastSeenAt } : {};
    const ended = await this.write(held, { set: { endedAt, endReason: reason } }, seen);
    if (!ended) return undefined;
    await this.record(END_EVENTS[reason], 'delete', ended.session, actorId, ctx, reason);
    return ended;
  }

  /** Updates a live session; undefined when it ended, vanished or changed meanwhile. */
  private async write(
    held: Held,
    change: { set: Item; remove?: string[] },
    expect: Record<string, unknown> = {},
  ): Promise<Held | undefined> {
    try {
      const item = await this.store.update(this.table, held.key, {
        set: change.set,
        remove: change.remove?.length ? change.remove : undefined,
        // Requiring the id keeps an update from creating an item that is not there.
        expect: { id: held.session.id, endedAt: undefined, ...expect },
      });
      return heldOf(item);
    } catch (error) {
      if (error instanceof ConditionFailedError) return undefined;
      throw error;
    }
  }

  private async read(key: Key): Promise<Held | undefined> {
    const item = await this.store.get(this.table, key);
    return item ? heldOf(item) : undefined;
  }

  private async *heldBy(userId: string): AsyncIterable<Held> {
    const keys: Key[] = [];
    for await (const entry of this.store.query(this.table, {
      partition: ['pk', sessionsOfUser(userId)],
      consistent: true,
    })) {
      keys.push({ pk: String(entry.sessionPk), sk: 'S' });
    }
    if (keys.length === 0) return;
    const items = await this.store.batchGet(this.table, keys, true);
    items.sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
    for (const item of items) yield heldOf(item);
  }

  private async retrying<T>(attempt: () => Promise<T | Retry>): Promise<T> {
    for (let i = 0; i < MAX_ATTEMPTS; i += 1) {
      const result = await attempt();
      if (result !== RETRY) return result;
    }
    throw new Error('the session kept changing under concurrent requests: try again');
  }

  private itemOf(held: Held): Item {
    const { session } = held;
    const absoluteEnd = Date.parse(session.createdAt) + this.policy.absoluteMs;
    return {
      ...held.key,
      // DynamoDB's TTL takes epoch seconds; it only tidies up, expiry is judged on every read.
      expiresAt: Math.ceil(absoluteEnd / 1000),
      ...session,
    };
  }

  private record(
    event: string,
    action: IdentityAuditEvent['action'],
    session: Session,
    actorId: string,
    ctx: ClientContext,
    reason?: string,
  ): Promise<void> {
    return this.audit({
      actorId,
      action,
      event,
      resourceType: 'Session',
      resourceId: session.id,
      sessionId: session.id,
      outcome: 'success',
      reason,
      ipAddress: ctx.ip,
      userAgent: ctx.userAgent,
    });
  }
}

/** The session fields of a stored item, and its key; nothing else of the item leaves here. */
function heldOf(item: Item): Held {
  const text = (name: string) => {
    const value = item[name];
    return typeof value === 'string' ? value : undefined;
  };
  const session = defined<Session>({
    id: String(item.id),
    userId: String(item.userId),
    roles: Array.isArray(item.roles) ? item.roles.map(String) : [],
    createdAt: String(item.createdAt),
    lastSeenAt: String(item.lastSeenAt),
    mfaAt: text('mfaAt'),
    method: item.method as Session['method'],
    ip: text('ip'),
    deviceHash: text('deviceHash'),
    endedAt: text('endedAt'),
    endReason: text('endReason') as SessionEndReason | undefined,
  });
  return { key: { pk: String(item.pk), sk: String(item.sk) }, session };
}

/** Drops absent fields, so items and results carry no undefined values. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
