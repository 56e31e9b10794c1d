import crypto from 'node:crypto';
import { ConditionFailedError } from '../platform/ports';
import { HttpError, badRequest, unauthorized } from '../platform/http/errors';
import { runtime } from '../platform/runtime';
import { SealedValueError } from '../platform/keys/sealers';
import type { Identity } from './context';
import { keys, PHI_ROLES, type User } from './model';
import { checkPassword, dummyVerify, hashPassword, verifyPassword } from './passwords';
import { matchRecoveryCode, newRecoveryCodes } from './recovery';
import { newTotpSecret, otpauthUri, qrDataUrl, verifyTotp } from './totp';
import { type Credentials, UserError, publicUser } from './users';

/**
 * Sign-in in two steps: something you know (a password, or a federated token), then
 * something you have (a TOTP code), joined by a short-lived single-use ticket. Only the
 * second step creates a session (45 CFR 164.312(d), person or entity authentication).
 */
export const TICKET_TTL_MS = 5 * 60_000;
/** Sign-in attempts per address per minute on the auth routes. */
export const AUTH_RATE_PER_MINUTE = 30;

export interface ClientContext {
  ip?: string;
  userAgent?: string;
}

type Purpose = 'mfa' | 'enrol-mfa';
interface Ticket {
  userId: string;
  purpose: Purpose;
  method: 'password' | 'oidc' | 'saml';
}

const sha = (text: string) => crypto.hash('sha256', text, 'hex');
/** A TOTP seed is sealed to its account and purpose: copied onto another, it does not open. */
const totpContext = (userId: string) => ({ purpose: 'totp-secret', userId });
/** A TOTP code is six digits; anything with letters is taken as a recovery code. */
/** Anything but six digits in the code field is taken as a recovery code. */
const isRecoveryCode = (code: unknown) => typeof code === 'string' && !/^\s*\d{6}\s*$/.test(code);

/** The same answer whether the account is unknown, the password wrong or the account locked. */
const refused = () => unauthorized('the email or password is not right, or the account is locked');

export class Auth {
  constructor(private readonly id: Identity) {}

  /** Throttles an address on the auth routes: 429 with Retry-After past the limit. */
  async throttle(ctx: ClientContext, route: string): Promise<void> {
    const minute = 60_000;
    const { count, resetAt } = await this.id.counters.hit(`auth#${route}#${ctx.ip ?? '-'}`, minute);
    const ipFailures = await this.id.counters.peek(addressBucket(ctx), this.id.lockout.ipWindowMs);
    const limited =
      count > AUTH_RATE_PER_MINUTE
        ? resetAt
        : ipFailures.count >= this.id.lockout.maxFailuresPerIp
          ? ipFailures.resetAt
          : undefined;
    if (limited === undefined) return;
    throw tooManyAttempts(limited);
  }

  async login(email: unknown, password: unknown, ctx: ClientContext) {
    if (email === undefined || email === null || email === '')
      throw badRequest('email', 'is required');
    if (typeof email !== 'string') throw badRequest('email', 'must be a string');
    if (email.length > 254) throw badRequest('email', 'is longer than any email address can be');
    if (password === undefined || password === null || password === '')
      throw badRequest('password', 'is required');
    if (typeof password !== 'string') throw badRequest('password', 'must be a string');
    const user = await this.id.users.byEmail(email);
    if (!user || !user.passwordHash || user.status === 'invited' || user.status === 'disabled') {
      await dummyVerify();
      await this.failed(user, ctx, user ? 'not_active' : 'unknown_account');
      throw refused();
    }
    if (user.status === 'locked' && !(await this.coolDownOver(user))) {
      // Locked: the password is not even checked, so the answer cannot reveal it. The address
      // is counted as for any refusal, so its limit does not tell locked accounts apart.
      await dummyVerify();
      await this.countAddress(ctx);
      await this.audit(user.id, 'login_refused', 'failure', ctx, 'account locked');
      throw refused();
    }
    if (!user.totpSecret && user.mfaResetAt && !user.federated) {
      // A reset account enrols again only through the officer's link. Its password is not
      // checked here, so neither the answer nor any count can confirm a guess at it.
      await dummyVerify();
      await this.failed(user, ctx, 'MFA reset pending');
      throw refused();
    }
    const hash = user.passwordHash;
    let needsRehash = false;
    const right = await this.guarded(user, ctx, dummyVerify, async () => {
      const verdict = await verifyPassword(password, hash);
      needsRehash = verdict.needsRehash;
      return verdict.ok ? undefined : 'wrong_password';
    });
    if (!right) throw refused();
    // The failure count is reset only once the second factor succeeds too, so knowing the
    // password does not buy fresh guesses at the code.
    if (needsRehash)
      await this.id.users.update(user.id, { passwordHash: await hashPassword(password) });
    return this.secondFactor(user, 'password', ctx);
  }

  /** After a verified first factor: a ticket for the TOTP step, or for MFA enrolment. */
  async secondFactor(
    user: User & Credentials,
    method: Ticket['method'],
    ctx: ClientContext,
    viaLink = false,
  ) {
    // A federated person has no password to enrol with: after an officer's reset they enrol a
    // new authenticator at their next sign-in through the provider.
    if (!user.totpSecret && user.mfaResetAt && !viaLink && !user.federated) {
      // A reset authenticator is enrolled again only through the link the officer issued.
      await this.audit(user.id, 'login_refused', 'failure', ctx, 'MFA reset pending');
      throw unauthorized('your MFA was reset: use the enrolment link from your security officer');
    }
    if (user.totpSecret) {
      const ticket = await this.issueTicket({ userId: user.id, purpose: 'mfa', method });
      await this.audit(user.id, 'password_verified', 'success', ctx);
      return { status: 'mfa_required' as const, ticket };
    }
    const secret = newTotpSecret();
    const sealed = await this.id.sealer.seal(secret, totpContext(user.id));
    await this.id.users.update(user.id, { totpPending: sealed });
    const uri = otpauthUri(secret, user.email);
    const ticket = await this.issueTicket({ userId: user.id, purpose: 'enrol-mfa', method });
    return {
      status: 'mfa_enrolment_required' as const,
      ticket,
      totp: { uri, secret, qr: await qrDataUrl(uri) },
    };
  }

  /** The second step: a TOTP code (or a recovery code) for a ticket; returns a session. */
  async mfa(
    body: { ticket?: unknown; code?: unknown; recoveryCode?: unknown },
    ctx: ClientContext,
  ) {
    if (typeof body.ticket !== 'string') throw badRequest('ticket', 'is required');
    const ticket = await this.redeemTicket(body.ticket);
    const user = await this.id.users.get(ticket.userId);
    if (
      !user ||
      user.status === 'disabled' ||
      (user.status === 'locked' && !(await this.coolDownOver(user)))
    ) {
      throw refused();
    }
    let recoveryCodes: string[] | undefined;
    if (ticket.purpose === 'enrol-mfa') {
      await this.confirmEnrolment(user, body.code, ctx);
      await this.endTicket(body.ticket);
      recoveryCodes = await this.issueRecoveryCodes(user.id);
    } else if (typeof body.recoveryCode === 'string' || isRecoveryCode(body.code)) {
      // The ticket is spent first: two codes sent on one ticket cannot both be used up.
      await this.endTicket(body.ticket);
      await this.useRecoveryCode(user, String(body.recoveryCode ?? body.code), ctx);
    } else {
      await this.checkTotp(user, body.code, ctx);
      await this.endTicket(body.ticket);
    }
    await this.id.users.update(user.id, { failedLogins: 0 });
    const { token, session } = await this.id.sessions.create(
      { id: user.id, roles: user.roles },
      { ...ctx, mfa: true, method: ticket.method },
    );
    await this.audit(user.id, 'login', 'success', ctx, ticket.method, session.id);
    return { token, session, user: publicUser(user), recoveryCodes };
  }

  /**
   * A federated identity that proved MFA upstream gets a session; otherwise Vigil's TOTP. An
   * account that has signed in with upstream MFA never enrols an authenticator on a
   * single-factor sign-in: whoever holds just the provider's password could enrol their own.
   */
  async federated(
    user: User & Credentials,
    method: 'oidc' | 'saml',
    multiFactor: boolean,
    ctx: ClientContext,
  ) {
    const upstreamMfaAt = user.upstreamMfaAt;
    if (!multiFactor) {
      if (!user.totpSecret && upstreamMfaAt) {
        await this.audit(user.id, 'login_refused', 'failure', ctx, 'no second factor');
        throw unauthorized(
          'your identity provider did not confirm a second factor and no authenticator is ' +
            'enrolled here: sign in with MFA at your identity provider',
        );
      }
      return this.secondFactor(user, method, ctx);
    }
    if (!upstreamMfaAt) {
      await this.id.users.update(user.id, { upstreamMfaAt: now().toISOString() });
    }
    const { token, session } = await this.id.sessions.create(
      { id: user.id, roles: user.roles },
      { ...ctx, mfa: true, method },
    );
    await this.audit(user.id, 'login', 'success', ctx, `${method} with upstream MFA`, session.id);
    return { status: 'signed_in' as const, token, session, user: publicUser(user) };
  }

  async stepUp(
    token: string | undefined,
    userId: string,
    code: unknown,
    ctx: ClientContext,
  ): Promise<void> {
    const user = await this.id.users.get(userId);
    if (!user || !token || user.status !== 'active') throw refused();
    await this.checkTotp(user, code, ctx);
    await this.id.sessions.markMfa(token, ctx);
    await this.audit(user.id, 'step_up', 'success', ctx);
  }

  async enrol(body: Record<string, unknown>, ctx: ClientContext) {
    if (typeof body.token !== 'string') throw badRequest('token', 'is required');
    if (typeof body.password !== 'string') throw badRequest('password', 'is required');
    const text = (name: string) =>
      typeof body[name] === 'string' ? (body[name] as string) : undefined;
    const personal = ['email', 'name', 'employeeId', 'npi'].some(
      (name) => body[name] !== undefined,
    );
    const person = personal
      ? {
          email: text('email') ?? '',
          name: text('name') ?? '',
          employeeId: text('employeeId'),
          npi: text('npi'),
        }
      : undefined;
    const password = body.password;
    // The link of an account that has a password (its MFA was reset) proves the person by that
    // password; it never replaces it, so the officer who passed the link on cannot sign in.
    let keptPassword = false;
    const user = await this.id.users.redeemEnrolment(body.token, person, async (who) => {
      if ('id' in who) {
        // Only the first officer's link creates an account; every other names one already.
        if (person) {
          throw badRequest(
            'email',
            'this link is for an account that exists: give only the password',
          );
        }
        // Judged before the password, and the link kept: it neither confirms a guess at the
        // password of a locked account nor is lost to someone else's failed sign-ins.
        await this.refuseEnrolment(who, ctx);
      }
      if ('passwordHash' in who && who.passwordHash) {
        keptPassword = true;
        const hash = who.passwordHash;
        const right = await this.guarded(who, ctx, dummyVerify, async () =>
          (await verifyPassword(password, hash)).ok ? undefined : 'wrong_password',
        );
        if (!right) throw refused();
        return;
      }
      const verdict = checkPassword(password, { name: who.name, email: who.email });
      if (!verdict.ok) throw badRequest('password', verdict.reason);
    });
    if (!keptPassword) {
      await this.id.users.update(user.id, {
        passwordHash: await hashPassword(password),
        status: 'active',
      });
      await this.audit(user.id, 'password_set', 'success', ctx);
    }
    return this.secondFactor(
      { ...user, status: 'active', totpSecret: undefined },
      'password',
      ctx,
      true,
    );
  }

  /** Why a link cannot enrol this account now, if it cannot; audited. */
  private async refuseEnrolment(user: User & Credentials, ctx: ClientContext): Promise<void> {
    if (user.status === 'locked' || user.status === 'disabled') {
      await this.audit(user.id, 'enrol_refused', 'failure', ctx, `account ${user.status}`);
      throw new HttpError(
        403,
        'account_not_active',
        'this account is locked or disabled: ask a security officer',
      );
    }
    if (user.federated) {
      // A password here would outlive the provider taking the person's access away.
      await this.audit(user.id, 'enrol_refused', 'failure', ctx, 'federated account');
      throw new HttpError(
        403,
        'federated_account',
        'this account signs in through your identity provider: sign in there',
      );
    }
    if (user.totpSecret) {
      // An enrolled authenticator is replaced only after an officer's reset clears it: an
      // older link, unused, must not replace it with the password alone.
      await this.audit(user.id, 'enrol_refused', 'failure', ctx, 'already enrolled');
      throw new UserError('token', 'this enrolment link is invalid, used or expired', 404);
    }
  }

  private async confirmEnrolment(user: User & Credentials, code: unknown, ctx: ClientContext) {
    if (!user.totpPending) throw badRequest('ticket', 'no MFA enrolment is pending; sign in again');
    if (typeof code !== 'string')
      throw badRequest('code', 'enter the 6-digit code from your authenticator');
    const result = verifyTotp(await this.totpSeed(user, user.totpPending, ctx), code, now());
    if (!result.ok) {
      await this.audit(user.id, 'mfa_enrolment_failed', 'failure', ctx);
      throw unauthorized('the code is not right; check the time on your device and try again');
    }
    await this.id.users.update(
      user.id,
      {
        totpSecret: user.totpPending,
        totpLastStep: result.step,
        mfaEnrolledAt: now().toISOString(),
      },
      ['totpPending', 'mfaResetAt'],
    );
    await this.audit(user.id, 'mfa_enrolled', 'success', ctx);
  }

  private async checkTotp(user: User & Credentials, code: unknown, ctx: ClientContext) {
    if (typeof code !== 'string')
      throw badRequest('code', 'enter the 6-digit code from your authenticator');
    if (!user.totpSecret) {
      // Accounts whose identity provider proves MFA get a fresh proof by signing in there.
      throw badRequest(
        'code',
        user.upstreamMfaAt
          ? 'this account proves MFA at its identity provider: sign in there again'
          : 'this account has no MFA enrolled',
      );
    }
    const seed = await this.totpSeed(user, user.totpSecret, ctx);
    const right = await this.guarded(user, ctx, undefined, async () => {
      const result = verifyTotp(seed, code, now(), user.totpLastStep);
      if (!result.ok) return result.reason;
      const fresh = await this.id.users.useTotpStep(user.id, result.step, user.totpLastStep);
      return fresh ? undefined : 'replayed';
    });
    if (!right) throw unauthorized('the code is not right or was used already');
  }

  /** The authenticator's seed; a seed that will not open is audited and ends the attempt. */
  private async totpSeed(user: User, sealed: string, ctx: ClientContext): Promise<string> {
    try {
      return await this.id.sealer.open(sealed, totpContext(user.id));
    } catch (error) {
      if (!(error instanceof SealedValueError)) throw error;
      await this.audit(user.id, 'mfa_seed_unreadable', 'failure', ctx);
      throw new HttpError(
        409,
        'mfa_unreadable',
        'the authenticator of this account cannot be checked: ask a security officer to reset MFA',
      );
    }
  }

  private async useRecoveryCode(user: User & Credentials, code: string, ctx: ClientContext) {
    const hashes = user.recoveryHashes ?? [];
    let index = -1;
    const right = await this.guarded(user, ctx, undefined, async () => {
      index = matchRecoveryCode(code, hashes);
      if (index < 0) return 'wrong_recovery_code';
      // Spent by a conditional write, so two requests racing with codes of one list cannot
      // both rewrite it and bring a used code back: the record of its use stops it either way.
      const rt = runtime();
      try {
        await rt.store.put(
          rt.config.identityTable,
          {
            ...keys.spentRecoveryCode(hashes[index] as string),
            userId: user.id,
            usedAt: now().toISOString(),
          },
          { ifAbsent: true },
        );
        return undefined;
      } catch (error) {
        if (error instanceof ConditionFailedError) return 'used_recovery_code';
        throw error;
      }
    });
    if (!right) throw unauthorized('the recovery code is not right or was used already');
    const left = await this.dropRecoveryHash(user, hashes[index] as string);
    await this.audit(user.id, 'recovery_code_used', 'success', ctx, `${left} left`);
  }

  /**
   * Removes a spent code's hash from the account's list by a write conditional on the list's
   * version, so codes spent at the same moment are all removed; returns how many are left.
   */
  private async dropRecoveryHash(user: User & Credentials, spent: string): Promise<number> {
    const userId = user.id;
    const rt = runtime();
    const table = rt.config.identityTable;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const item = await rt.store.get(table, keys.user(userId));
      const current = Array.isArray(item?.recoveryHashes) ? (item.recoveryHashes as string[]) : [];
      const version = item?.recoveryVersion as number | undefined;
      const rest = current.filter((hash) => hash !== spent);
      if (rest.length === current.length) return rest.length;
      try {
        await rt.store.update(table, keys.user(userId), {
          set: { recoveryHashes: rest, recoveryVersion: (version ?? 0) + 1 },
          expect: { pk: keys.user(userId).pk, recoveryVersion: version },
        });
        return rest.length;
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
      }
    }
    // The record of the code's use still stops it; only the list is left longer for now.
    return Math.max(0, (user.recoveryHashes?.length ?? 1) - 1);
  }

  private async issueRecoveryCodes(userId: string): Promise<string[]> {
    const { codes, hashes } = newRecoveryCodes();
    // A new version too: a spent code's removal racing this cannot write the old list back.
    await this.id.users.update(userId, { recoveryHashes: hashes, recoveryVersion: Date.now() });
    return codes;
  }

  /**
   * One check of a secret (password, TOTP or recovery code) for an account; true when right.
   * The attempt counts as a failure before the slow check and is taken back when it succeeds,
   * so of guesses sent in parallel only those within the limit are judged; the rest are
   * refused unseen, after `pretend` spends the time a check would.
   */
  private async guarded(
    user: User & Credentials,
    ctx: ClientContext,
    pretend: (() => Promise<unknown>) | undefined,
    check: () => Promise<string | undefined>,
  ): Promise<boolean> {
    // The address is counted first too, so a burst spread over many accounts stops at its limit.
    const address = await this.countAddress(ctx);
    const attempt = await this.countFailure(user.id);
    if (attempt > this.id.lockout.maxFailures) {
      // Refused unchecked. Not a lock by itself: the count may include attempts still being
      // checked that turn out right; the failure that reached the limit has locked already.
      await pretend?.();
      await this.audit(user.id, 'login_failed', 'failure', ctx, 'over_limit');
      return false;
    }
    if (address.count > this.id.lockout.maxFailuresPerIp) {
      await this.uncount(user.id);
      await this.audit(user.id, 'login_refused', 'failure', ctx, 'address over its failure limit');
      throw tooManyAttempts(address.resetAt);
    }
    let failure: string | undefined;
    try {
      failure = await check();
    } catch (error) {
      // Not judged (the check could not run): not a failure of this person's.
      await this.uncount(user.id);
      await this.uncountAddress(ctx, address.resetAt);
      throw error;
    }
    if (failure === undefined || RIGHT_BUT_USED.has(failure)) {
      await this.uncount(user.id);
      await this.uncountAddress(ctx, address.resetAt);
      if (failure === undefined) return true;
      // A right code sent twice (a double submit) is refused but is no guess: not counted.
      await this.audit(user.id, 'login_failed', 'failure', ctx, failure);
      return false;
    }
    await this.afterFailure(user, ctx, failure, attempt);
    return false;
  }

  private countAddress(ctx: ClientContext) {
    return this.id.counters.hit(addressBucket(ctx), this.id.lockout.ipWindowMs);
  }

  private uncountAddress(ctx: ClientContext, resetAt: number) {
    return this.id.counters.undo(addressBucket(ctx), this.id.lockout.ipWindowMs, resetAt);
  }

  /**
   * A federated sign-in refused before any account is known: audited, and, unless the refusal
   * is the provider's user having no access, counted against the address like a wrong password.
   */
  async federatedRefused(
    ctx: ClientContext,
    method: 'oidc' | 'saml',
    reason: string,
    counted = true,
  ): Promise<void> {
    if (counted) await this.countAddress(ctx);
    const event = counted ? 'login_failed' : 'login_refused';
    await this.audit('unknown', event, 'failure', ctx, `${method}: ${reason}`);
  }

  /** A failure outside a guarded check: an unknown or inactive account. */
  private async failed(user: (User & Credentials) | undefined, ctx: ClientContext, reason: string) {
    await this.countAddress(ctx);
    // An account without a password has nothing to guess: counting against it would only let
    // a stranger lock the person out before they enrol.
    if (!user || !user.passwordHash) {
      await this.audit(user?.id ?? 'unknown', 'login_failed', 'failure', ctx, reason);
      return;
    }
    await this.afterFailure(user, ctx, reason, await this.countFailure(user.id));
  }

  /**
   * Audits a failure and locks the account at the limit; the caller has counted the attempt
   * against the account and the address.
   */
  private async afterFailure(
    user: User,
    ctx: ClientContext,
    reason: string,
    failures: number,
  ): Promise<void> {
    await this.audit(user.id, 'login_failed', 'failure', ctx, reason);
    if (failures < this.id.lockout.maxFailures) return;
    // A conditional write: of the failures racing past the limit, one locks and audits it.
    if (!(await this.id.users.lockOnce(user.id, 'failed_logins'))) return;
    await this.audit(user.id, 'lockout', 'failure', ctx, `${failures} consecutive failures`);
    // A locked account keeps no session: a stolen one cannot go on guessing codes.
    await this.id.sessions.revokeAll(user.id, 'system');
  }

  /** Takes back the count of an attempt that proved right. */
  private async uncount(userId: string): Promise<void> {
    const rt = runtime();
    const table = rt.config.identityTable;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const item = await rt.store.get(table, keys.user(userId));
      const previous = Number(item?.failedLogins ?? 0);
      if (!item || previous <= 0) return;
      try {
        await rt.store.update(table, keys.user(userId), {
          set: { failedLogins: previous - 1 },
          expect: { failedLogins: previous },
        });
        return;
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
      }
    }
  }

  /**
   * Adds one to the account's consecutive failures, atomically: parallel guesses are all
   * counted, each seeing its own number. 0 when the account is gone.
   */
  private async countFailure(userId: string): Promise<number> {
    const rt = runtime();
    const key = keys.user(userId);
    try {
      const item = await rt.store.update(rt.config.identityTable, key, {
        add: { failedLogins: 1 },
        expect: { pk: key.pk },
      });
      return Number(item.failedLogins);
    } catch (error) {
      if (error instanceof ConditionFailedError) return 0;
      throw error;
    }
  }

  private async coolDownOver(user: User): Promise<boolean> {
    const { coolDownMs } = this.id.lockout;
    if (coolDownMs === 0 || user.lockedReason !== 'failed_logins' || !user.lockedAt) return false;
    if (now().getTime() - Date.parse(user.lockedAt) < coolDownMs) return false;
    await this.id.users.unlock(user.id);
    await this.audit('system', 'unlock', 'success', {}, 'cool-down over', undefined, user.id);
    return true;
  }

  private async issueTicket(ticket: Ticket): Promise<string> {
    const token = crypto.randomBytes(32).toString('base64url');
    const rt = runtime();
    await rt.store.put(rt.config.identityTable, {
      ...keys.ticket(sha(token)),
      ...ticket,
      expiresAt: Math.floor((now().getTime() + TICKET_TTL_MS) / 1000),
    });
    return token;
  }

  private async redeemTicket(token: string): Promise<Ticket> {
    const rt = runtime();
    const key = keys.ticket(sha(token));
    const item = await rt.store.get(rt.config.identityTable, key);
    if (!item || item.usedAt || Number(item.expiresAt) * 1000 < now().getTime()) {
      throw unauthorized('the sign-in step expired or was used; start again with your password');
    }
    // A wrong code keeps the ticket for another try (the account's failure count still grows);
    // a right one ends it before any session exists.
    return {
      userId: String(item.userId),
      purpose: item.purpose as Purpose,
      method: item.method as Ticket['method'],
    };
  }

  async endTicket(token: string): Promise<void> {
    const rt = runtime();
    try {
      await rt.store.update(rt.config.identityTable, keys.ticket(sha(token)), {
        set: { usedAt: now().toISOString() },
        expect: { usedAt: undefined },
      });
    } catch (error) {
      if (error instanceof ConditionFailedError)
        throw unauthorized('this sign-in step was used already');
      throw error;
    }
  }

  async audit(
    actorId: string,
    event: string,
    outcome: 'success' | 'failure',
    ctx: ClientContext,
    reason?: string,
    sessionId?: string,
    subjectId?: string,
  ): Promise<void> {
    await this.id.audit({
      actorId,
      action: 'execute',
      event,
      resourceType:
        event.startsWith('mfa') || event.startsWith('recovery') ? 'Credential' : 'Session',
      resourceId: sessionId ?? subjectId ?? actorId,
      outcome,
      reason,
      ipAddress: ctx.ip,
      userAgent: ctx.userAgent,
      sessionId,
    });
  }
}

const now = () => runtime().clock.now();

/** The counter of failures from the caller's address, across accounts. */
const addressBucket = (ctx: ClientContext) => `ipfail#${ctx.ip ?? '-'}`;

/** Refusals of a secret that was right but spent already. */
const RIGHT_BUT_USED = new Set(['replayed', 'used_recovery_code']);

/** 429 with the seconds until `until` in Retry-After. */
function tooManyAttempts(until: number): HttpError {
  const seconds = Math.max(1, Math.ceil((until - now().getTime()) / 1000));
  return new HttpError(
    429,
    'too_many_requests',
    `too many attempts; try again in ${seconds} s`,
    undefined,
    {
      'retry-after': String(seconds),
    },
  );
}

export { PHI_ROLES };
