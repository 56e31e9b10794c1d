import crypto from 'node:crypto';
import {
  ConditionFailedError,
  type Clock,
  type Item,
  type Key,
  type Store,
} from '../platform/ports';
import {
  type PersonRole,
  PERSON_ROLES,
  type PrincipalKind,
  type User,
  type UserStatus,
  USERS_PARTITION,
  keys,
} from './model';

/**
 * Accounts: one per person, tied to that person by name, work email and an employee id or
 * NPI. Shared and generic accounts defeat unique user identification (45 CFR
 * 164.312(a)(2)(i)), so their usual names are refused outright.
 */
const GENERIC_NAMES =
  /^(admin|administrator|root|test|tester|testing|shared|share|guest|user|demo|default|temp|nurse|doctor|physician|reception|frontdesk|billing|staff|team|office|support|service|system|sysadmin|info|it)[-_.]?\d*$/i;

/**
 * A work address in plain ASCII (RFC 5321 dot-atom local part, DNS host name): lookalike
 * letters, invisible characters and a trailing dot would each spell one mailbox a second way.
 */
const EMAIL =
  /^[a-z0-9!#$%&'*/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const NPI = /^\d{10}$/;

/** An enrolment link is valid for a day and for one use. */
export const ENROLMENT_TTL_MS = 24 * 60 * 60 * 1000;

export class UserError extends Error {
  constructor(
    readonly field: string,
    reason: string,
    readonly status: 400 | 404 | 409 = 400,
  ) {
    super(reason);
    this.name = 'UserError';
  }
}

export interface NewUser {
  kind?: PrincipalKind;
  email: string;
  name: string;
  employeeId?: string;
  npi?: string;
  roles: PersonRole[];
  federated?: User['federated'];
}

/** The stored item: the public user plus credential fields that never leave this module. */
/** What the account's owner proves with, and the state of those proofs: never leaves here. */
export interface Credentials {
  passwordHash?: string;
  /** The authenticator's seed, sealed to the account (see Sealer). */
  totpSecret?: string;
  totpPending?: string;
  totpLastStep?: number;
  recoveryHashes?: string[];
  /** Changes with every write of `recoveryHashes`, so a write can be made conditional on it. */
  recoveryVersion?: number;
  /** Consecutive failed passwords and codes; the lockout counts these. */
  failedLogins?: number;
  /** An officer reset the authenticator; a new one is enrolled only through their link. */
  mfaResetAt?: string;
  /** First sign-in whose MFA the identity provider proved. */
  upstreamMfaAt?: string;
  /** Enrolment links issued before this instant (epoch seconds) no longer work. */
  linksVoidBefore?: number;
}

/**
 * What a security officer may change on an account. A field present with the value undefined
 * is cleared; an absent field stays as it is. The email, kind and credentials are not here.
 */
export interface ProfileChange {
  name?: string;
  employeeId?: string | undefined;
  npi?: string | undefined;
  roles?: PersonRole[];
}

/** The fields that tie an account to one person: each value is held by one account at most. */
type PersonField = 'employeeId' | 'npi';

const PERSON_TAKEN = 'another account already belongs to this person';
const FEDERATED_TAKEN = 'this identity provider account is linked to another account already';

/** A profile change that keeps losing races to other changes of the same account is refused. */
const CHANGE_ATTEMPTS = 3;

/** Claimed case-blind: "e-7" is the same employee as "E-7". */
const personKey = (field: PersonField, value: string): Key => ({
  pk: `PERSON#${field}#${value.toUpperCase()}`,
  sk: 'P',
});

const hash = (text: string) => crypto.hash('sha256', text, 'hex');

/**
 * Characters a name never needs and a screen or log can be fooled by: controls, line and
 * paragraph separators, and the bidirectional overrides and isolates. Zero-width joiners stay,
 * as some scripts spell names with them.
 */
const UNPRINTABLE = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/u;

/** A name for someone known only by email: `dana.chen@...` gives `Dana Chen`. */
export function nameFromEmail(email: string): string {
  const local = email.split('@')[0] ?? email;
  return local
    .split(/[._-]+/)
    .filter(Boolean)
    .map((part) => part[0]?.toUpperCase() + part.slice(1))
    .join(' ');
}

/** A name from an identity provider, with what a name never needs turned into spaces. */
export function cleanName(raw: string): string {
  return raw.replace(new RegExp(UNPRINTABLE.source, 'gu'), ' ').replace(/\s+/g, ' ').trim();
}

export const LAST_OFFICER =
  'this is the last active security officer: give the role to someone else first';

/** One spelling per employee id, so that one person cannot hold two claims ("E-1", "E-1 "). */
const EMPLOYEE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validateNewUser(input: NewUser): void {
  const kind: string = input.kind ?? 'person';
  if (kind !== 'person') {
    throw new UserError(
      'kind',
      'user accounts are for people; a service gets an API key (vigil producers create)',
    );
  }
  const email = input.email?.trim().toLowerCase() ?? '';
  if (email.includes('+')) {
    throw new UserError('email', 'use the plain work address, without a +tag: it is one mailbox');
  }
  if (email.length > 254 || (email.split('@')[0] ?? '').length > 64 || !EMAIL.test(email)) {
    throw new UserError('email', 'must be a work email address in plain ASCII letters');
  }
  const local = email.split('@')[0] ?? '';
  if (GENERIC_NAMES.test(local)) {
    throw new UserError(
      'email',
      'shared or generic accounts are not allowed: use a personal address',
    );
  }
  const name = input.name?.trim() ?? '';
  if (name.length < 3 || name.length > 200)
    throw new UserError('name', "must be the person's full name");
  if (UNPRINTABLE.test(name)) {
    throw new UserError(
      'name',
      'must not contain control, line-break or text-direction characters',
    );
  }
  // A directory may know someone by one name; a name typed here must give first and last.
  const words = name.split(/\s+/);
  const generic =
    GENERIC_NAMES.test(name.replace(/\s+/g, '')) || words.every((word) => GENERIC_NAMES.test(word));
  if (generic || (!input.federated && words.length < 2)) {
    throw new UserError('name', "must be a real person's first and last name");
  }
  if (!input.employeeId && !input.npi && !input.federated) {
    throw new UserError('employeeId', 'an employee id or an NPI ties the account to one person');
  }
  if (input.employeeId !== undefined && !EMPLOYEE_ID.test(input.employeeId)) {
    throw new UserError(
      'employeeId',
      'must be 1 to 64 letters, digits, dots, dashes or underscores, with no spaces',
    );
  }
  if (input.npi !== undefined && !validNpi(input.npi)) {
    throw new UserError('npi', 'must be a valid 10-digit NPI (its check digit does not match)');
  }
  if (!Array.isArray(input.roles) || input.roles.length === 0) {
    throw new UserError('roles', `give at least one of: ${PERSON_ROLES.join(', ')}`);
  }
  for (const role of input.roles) {
    if (!PERSON_ROLES.includes(role)) throw new UserError('roles', `${String(role)} is not a role`);
  }
}

/** NPI check digit: Luhn over the number prefixed with the card issuer code 80840 (CMS). */
export function validNpi(npi: string): boolean {
  if (!NPI.test(npi)) return false;
  const digits = `80840${npi}`.split('').map(Number);
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let d = digits[digits.length - 1 - i] as number;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export class Users {
  constructor(
    private readonly store: Store,
    private readonly table: string,
    private readonly clock: Clock,
  ) {}

  /** Creates the account and returns a one-time enrolment token (the link's secret). */
  async create(input: NewUser): Promise<{ user: User; enrolmentToken: string }> {
    validateNewUser(input);
    const email = input.email.trim().toLowerCase();
    const id = crypto.randomUUID();
    const now = this.clock.now();
    // The store writes one item at a time: each uniqueness claim made here is remembered, so
    // a creation that fails part-way gives its claims back instead of blocking those values.
    const claimed: Key[] = [];
    const claim = async (key: Key, field: string, taken: string) => {
      try {
        await this.store.put(this.table, { ...key, userId: id }, { ifAbsent: true });
      } catch (error) {
        if (error instanceof ConditionFailedError) throw new UserError(field, taken, 409);
        throw error;
      }
      claimed.push(key);
    };
    const user: User = {
      id,
      kind: 'person',
      email,
      name: input.name.trim(),
      employeeId: input.employeeId,
      npi: input.npi,
      roles: [...new Set(input.roles)],
      status: input.federated ? 'active' : 'invited',
      createdAt: now.toISOString(),
      federated: input.federated,
    };
    try {
      await claim(keys.email(email), 'email', 'an account with this email exists already');
      // One account per person: the employee id and the NPI are each claimed once.
      for (const [field, value] of [
        ['employeeId', input.employeeId],
        ['npi', input.npi],
      ] as const) {
        if (!value) continue;
        await claim(personKey(field, value), field, PERSON_TAKEN);
      }
      // An identity provider account signs in as one account only.
      if (input.federated) {
        const { issuer, subject } = input.federated;
        await claim(keys.federated(issuer, subject), 'subject', FEDERATED_TAKEN);
      }
      await this.store.put(this.table, this.toItem(user), { ifAbsent: true });
    } catch (error) {
      await this.release(id, claimed);
      throw error;
    }
    return { user, enrolmentToken: await this.newEnrolment(id) };
  }

  /** Removes claims made for account `id`; a claim another account holds is never touched. */
  private async release(id: string, claimed: Key[]): Promise<void> {
    for (const key of claimed) {
      try {
        await this.store.delete(this.table, key, { expect: { userId: id } });
      } catch {
        // The caller reports its own outcome; a claim left behind only blocks its value.
      }
    }
  }

  async get(id: string): Promise<(User & Credentials) | undefined> {
    const item = await this.store.get(this.table, keys.user(id));
    return item ? fromItem(item) : undefined;
  }

  async byEmail(email: string): Promise<(User & Credentials) | undefined> {
    const link = await this.store.get(this.table, keys.email(email.trim().toLowerCase()));
    return link ? this.get(String(link.userId)) : undefined;
  }

  async byFederated(issuer: string, subject: string) {
    const link = await this.store.get(this.table, keys.federated(issuer, subject));
    return link ? this.get(String(link.userId)) : undefined;
  }

  /**
   * While no security officer exists: a one-time link for the first one, who gives their
   * own name, email and employee id when they use it. No default account or password exists.
   */
  async bootstrapToken(): Promise<string | undefined> {
    if (await this.hasOfficer()) return undefined;
    const token = await this.issueLink({ bootstrap: true });
    // Only the newest first-officer link works: each start replaces the one before.
    await this.store.put(this.table, { pk: 'BOOTSTRAP', sk: 'B', tokenHash: hash(token) });
    return token;
  }

  /**
   * The user an unexpired, unused enrolment token belongs to; using it consumes it. `accept`
   * runs first (the password check), so a refused password does not spend the link.
   */
  async redeemEnrolment(
    token: string,
    person: Omit<NewUser, 'roles' | 'kind'> | undefined,
    accept: (who: { name: string; email: string } | (User & Credentials)) => Promise<void> | void,
  ): Promise<User & Credentials> {
    const key = keys.enrolment(hash(token));
    const item = await this.store.get(this.table, key);
    if (item?.bootstrap) return this.redeemBootstrap(key, item, person, accept);
    const now = Math.floor(this.clock.now().getTime() / 1000);
    if (!item || item.usedAt || Number(item.expiresAt) < now) {
      throw new UserError('token', 'this enrolment link is invalid, used or expired', 404);
    }
    const user = await this.get(String(item.userId));
    if (!user) throw new UserError('token', 'the account no longer exists', 404);
    const issuedAt = Number(item.expiresAt) - ENROLMENT_TTL_MS / 1000;
    if (user.linksVoidBefore !== undefined && issuedAt <= user.linksVoidBefore) {
      throw new UserError('token', 'this enrolment link is invalid, used or expired', 404);
    }
    // Judged before the link is spent, so a mistyped password does not cost the link.
    await accept(user);
    await this.spendLink(key, now);
    return user;
  }

  private async redeemBootstrap(
    key: Item,
    item: Item,
    person: Omit<NewUser, 'roles' | 'kind'> | undefined,
    accept: (who: { name: string; email: string }) => Promise<void> | void,
  ) {
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const current = await this.store.get(this.table, { pk: 'BOOTSTRAP', sk: 'B' });
    const superseded = current?.tokenHash !== String(key.pk).slice('ENROL#'.length);
    if (item.usedAt || superseded || Number(item.expiresAt) < now || (await this.hasOfficer())) {
      throw new UserError('token', 'this first-officer link is invalid, used or expired', 404);
    }
    if (!person) throw new UserError('email', 'give your name, work email and employee id or NPI');
    validateNewUser({ ...person, roles: ['security_officer'] });
    await accept(person);
    await this.spendLink(key, now);
    let user: User;
    try {
      ({ user } = await this.create({ ...person, roles: ['security_officer'] }));
    } catch (error) {
      // An email or employee id someone holds already: the link stays good for another try.
      await this.store.update(this.table, key as never, {
        set: {},
        remove: ['usedAt'],
        expect: { usedAt: now },
      });
      throw error;
    }
    return (await this.get(user.id)) as User & Credentials;
  }

  newEnrolment(id: string): Promise<string> {
    return this.issueLink({ userId: id });
  }

  /** A one-time link secret, stored only as its hash, valid for ENROLMENT_TTL_MS. */
  private async issueLink(target: { userId: string } | { bootstrap: true }): Promise<string> {
    const token = crypto.randomBytes(32).toString('base64url');
    await this.store.put(this.table, {
      ...keys.enrolment(hash(token)),
      ...target,
      expiresAt: Math.floor((this.clock.now().getTime() + ENROLMENT_TTL_MS) / 1000),
    });
    return token;
  }

  /** Marks a link used; a second redemption, even a racing one, is refused. */
  private async spendLink(key: Item, now: number): Promise<void> {
    try {
      await this.store.update(this.table, key as never, {
        set: { usedAt: now },
        expect: { usedAt: undefined },
      });
    } catch (error) {
      if (error instanceof ConditionFailedError) {
        throw new UserError('token', 'this enrolment link was used', 404);
      }
      throw error;
    }
  }

  async list(): Promise<User[]> {
    const users: User[] = [];
    for await (const item of this.store.query(this.table, {
      index: 'gsi1',
      partition: ['gsi1pk', USERS_PARTITION],
    })) {
      users.push(publicUser(fromItem(item)));
    }
    return users;
  }

  /** Whether any security officer account exists (demo data alone does not count). */
  /** Whether an active security officer other than `id` exists, who can manage users. */
  async otherActiveOfficer(id: string): Promise<boolean> {
    const users = await this.list();
    return users.some(
      (u) => u.id !== id && u.roles.includes('security_officer') && u.status === 'active',
    );
  }

  async hasOfficer(): Promise<boolean> {
    const users = await this.list();
    return users.some((u) => u.roles.includes('security_officer') && u.status !== 'disabled');
  }

  /**
   * An officer's change to an account's profile. The account as it would be after the change
   * must pass the checks a new account passes. A new employee id or NPI is claimed before the
   * account is written and the value it replaces is given back afterwards, so no two accounts
   * ever hold the same value; a write that fails gives back what it claimed.
   */
  async change(id: string, profile: ProfileChange): Promise<User & Credentials> {
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt += 1) {
      const current = await this.get(id);
      if (!current) throw new UserError('id', 'no such user', 404);
      const changes = (field: keyof ProfileChange) => Object.hasOwn(profile, field);
      const next: NewUser = {
        kind: current.kind,
        email: current.email,
        name: changes('name') ? (profile.name as string) : current.name,
        employeeId: changes('employeeId') ? profile.employeeId : current.employeeId,
        npi: changes('npi') ? profile.npi : current.npi,
        roles: changes('roles') ? (profile.roles as PersonRole[]) : current.roles,
        federated: current.federated,
      };
      validateNewUser(next);
      const demoted =
        current.roles.includes('security_officer') && !next.roles.includes('security_officer');
      if (demoted && !(await this.otherActiveOfficer(id))) {
        throw new UserError('roles', LAST_OFFICER, 409);
      }

      const set: Item = {};
      const remove: string[] = [];
      if (changes('name')) set.name = next.name.trim();
      if (changes('roles')) set.roles = [...new Set(next.roles)];
      const moved: Array<{ field: PersonField; from?: string; to?: string }> = [];
      for (const field of ['employeeId', 'npi'] as const) {
        if (!changes(field) || next[field] === current[field]) continue;
        const from = current[field];
        const to = next[field];
        if (from && to && personKey(field, from).pk === personKey(field, to).pk) {
          // Another spelling of the same id: the claim stays, only the spelling changes.
          set[field] = to;
          continue;
        }
        moved.push({ field, from: current[field], to: next[field] });
        if (next[field] === undefined) remove.push(field);
        else set[field] = next[field];
      }
      if (Object.keys(set).length === 0 && remove.length === 0) return current;

      const claimed: Key[] = [];
      try {
        for (const { field, to } of moved) {
          if (to === undefined) continue;
          const key = personKey(field, to);
          try {
            await this.store.put(this.table, { ...key, userId: id }, { ifAbsent: true });
          } catch (error) {
            if (error instanceof ConditionFailedError)
              throw new UserError(field, PERSON_TAKEN, 409);
            throw error;
          }
          claimed.push(key);
        }
        const item = await this.store.update(this.table, keys.user(id), {
          set: Object.keys(set).length > 0 ? set : undefined,
          remove: remove.length > 0 ? remove : undefined,
          // Judged on the values read above: a change made meanwhile is read again first.
          expect: {
            pk: keys.user(id).pk,
            employeeId: current.employeeId,
            npi: current.npi,
          },
        });
        const released = moved.flatMap(({ field, from }) =>
          from === undefined ? [] : [personKey(field, from)],
        );
        await this.release(id, released);
        if (demoted && !(await this.otherActiveOfficer(id))) {
          // Two officers demoting each other at once both passed the check above: the one who
          // finds no officer left afterwards puts the role back.
          await this.update(id, { roles: current.roles });
          throw new UserError('roles', LAST_OFFICER, 409);
        }
        return fromItem(item);
      } catch (error) {
        await this.release(id, claimed);
        if (!(error instanceof ConditionFailedError)) throw error;
      }
    }
    throw new UserError('id', 'the account kept changing meanwhile: try again', 409);
  }

  /**
   * Writes account state that the identity flows keep (credentials, status, counters). An
   * officer's change of name, employee id, NPI or roles goes through `change`, which checks it.
   */
  async update(
    id: string,
    change: Partial<User & Credentials>,
    remove: string[] = [],
  ): Promise<User & Credentials> {
    const allowed = Object.fromEntries(
      Object.entries(change).filter(([k]) => k !== 'id' && k !== 'email'),
    );
    try {
      const item = await this.store.update(this.table, keys.user(id), {
        set: Object.keys(allowed).length > 0 ? allowed : undefined,
        remove: remove.length > 0 ? remove : undefined,
        expect: { pk: keys.user(id).pk },
      });
      return fromItem(item);
    } catch (error) {
      if (error instanceof ConditionFailedError) throw new UserError('id', 'no such user', 404);
      throw error;
    }
  }

  /**
   * Ties an account an officer created, and nobody has used, to its identity at the hospital's
   * identity provider; false when the account is not there to take. The account is taken by a
   * conditional write, so of sign-ins racing for it exactly one links it. Enrolment links
   * issued before are void from then on: the provider is how this person signs in.
   */
  async linkFederated(id: string, issuer: string, subject: string): Promise<boolean> {
    const now = Math.floor(this.clock.now().getTime() / 1000);
    try {
      await this.store.update(this.table, keys.user(id), {
        set: { federated: { issuer, subject }, status: 'active', linksVoidBefore: now },
        expect: {
          status: 'invited',
          federated: undefined,
          passwordHash: undefined,
          totpSecret: undefined,
        },
      });
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
    try {
      await this.store.put(
        this.table,
        { ...keys.federated(issuer, subject), userId: id },
        { ifAbsent: true },
      );
      return true;
    } catch (error) {
      // The provider's account belongs to another account already: this one is given back.
      await this.store.update(this.table, keys.user(id), {
        set: { status: 'invited' },
        remove: ['federated'],
      });
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  /** Records a used TOTP step only if it is newer than the last: a code is good once. */
  async useTotpStep(id: string, step: number, lastStep: number | undefined): Promise<boolean> {
    try {
      await this.store.update(this.table, keys.user(id), {
        set: { totpLastStep: step },
        expect: { totpLastStep: lastStep },
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  /**
   * Ends a lock, back to where the account was: active once it has a password, invited before.
   * The failure count starts again from zero.
   */
  async unlock(id: string): Promise<User> {
    const user = await this.get(id);
    if (!user) throw new UserError('id', 'no such user', 404);
    const status: UserStatus = user.passwordHash ? 'active' : 'invited';
    return publicUser(
      await this.update(id, { status, failedLogins: 0 }, ['lockedAt', 'lockedReason']),
    );
  }

  /** Locks the account unless it is locked already; true when this call locked it. */
  async lockOnce(id: string, reason: string): Promise<boolean> {
    try {
      await this.store.update(this.table, keys.user(id), {
        set: { status: 'locked', lockedAt: this.clock.now().toISOString(), lockedReason: reason },
        expect: { pk: keys.user(id).pk, lockedAt: undefined },
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  async setStatus(id: string, status: UserStatus, reason?: string): Promise<User> {
    const at = this.clock.now().toISOString();
    if (status === 'locked')
      return publicUser(await this.update(id, { status, lockedAt: at, lockedReason: reason }));
    return publicUser(await this.update(id, { status }, ['lockedAt', 'lockedReason']));
  }

  private toItem(user: User): Item {
    return { ...keys.user(user.id), gsi1pk: USERS_PARTITION, gsi1sk: user.email, ...user };
  }
}

function fromItem(item: Item): User & Credentials {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest as unknown as User & Credentials;
}

/** What may leave the identity module: never hashes, secrets or codes. */
export function publicUser(user: User & Credentials): User {
  const {
    passwordHash: _p,
    totpSecret: _t,
    totpPending: _tp,
    totpLastStep: _s,
    recoveryHashes: _r,
    recoveryVersion: _rv,
    failedLogins: _f,
    mfaResetAt: _m,
    upstreamMfaAt: _u,
    linksVoidBefore: _l,
    ...rest
  } = user;
  return { ...rest, mfaEnrolledAt: user.mfaEnrolledAt } as User;
}
