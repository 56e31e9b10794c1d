/**
 * The identity model shared by users, credentials, sessions and federation. Every person has
 * one account (45 CFR 164.312(a)(2)(i), unique user identification). Services are a separate
 * principal type, never a user: an API key (functions/audit/producers.ts) holding a producer
 * role, which is not a person role, so no service can hold a role that reaches PHI, sign in,
 * or open a session.
 */

export const PERSON_ROLES = [
  'security_officer',
  'privacy_officer',
  'compliance',
  'auditor',
  'physician',
  'nurse',
  'pharmacist',
  'lab_technician',
  'billing',
  'front_desk',
] as const;
export type PersonRole = (typeof PERSON_ROLES)[number];

/** Roles that read or change PHI; every account holding one must use MFA. */
export const PHI_ROLES: readonly PersonRole[] = PERSON_ROLES;

/** Every user account is a person's; the field names the principal type in what is stored. */
export type PrincipalKind = 'person';
export type UserStatus = 'invited' | 'active' | 'locked' | 'disabled';

export interface User {
  id: string;
  kind: PrincipalKind;
  email: string;
  name: string;
  /** Employee number or NPI: ties the account to one person. */
  employeeId?: string;
  npi?: string;
  roles: PersonRole[];
  status: UserStatus;
  createdAt: string;
  /** Federated users: the issuer and subject that sign them in. */
  federated?: { issuer: string; subject: string };
  mfaEnrolledAt?: string;
  lockedAt?: string;
  lockedReason?: string;
}

/** Who a verified OIDC token or SAML assertion says signed in; nothing here is unverified. */
export interface FederatedIdentity {
  /** The identity provider: the token's `iss`, or the assertion's Issuer. */
  issuer: string;
  subject: string;
  email?: string;
  /** The provider vouches for the email: enough to link an account made for that address. */
  emailVerified: boolean;
  name?: string;
  roles: PersonRole[];
}

/** What the audit log is told about an identity event: never a password, code or token. */
export interface IdentityAuditEvent {
  /** Who acted (the user signing in, or the officer acting on another account). */
  actorId: string;
  action: 'view' | 'create' | 'update' | 'delete' | 'execute';
  /** e.g. `login`, `login_failed`, `lockout`, `unlock`, `mfa_enrolled`, `step_up`, `logout`. */
  event: string;
  resourceType: 'Session' | 'User' | 'Credential';
  resourceId: string;
  outcome: 'success' | 'failure';
  reason?: string;
  ipAddress?: string;
  userAgent?: string;
  sessionId?: string;
}

export type IdentityAudit = (event: IdentityAuditEvent) => Promise<void>;

/** Keys in the identity table (pk, sk; gsi1 lists users by email; a user's sessions are listed through registry items). */
export const keys = {
  user: (id: string) => ({ pk: `USER#${id}`, sk: 'U' }),
  email: (email: string) => ({ pk: `EMAIL#${email}`, sk: 'E' }),
  federated: (issuer: string, subject: string) => ({ pk: `FED#${issuer}#${subject}`, sk: 'F' }),
  enrolment: (tokenHash: string) => ({ pk: `ENROL#${tokenHash}`, sk: 'T' }),
  session: (tokenHash: string) => ({ pk: `SESSION#${tokenHash}`, sk: 'S' }),
  failures: (scope: 'account' | 'ip', id: string) => ({ pk: `FAIL#${scope}#${id}`, sk: 'C' }),
  rate: (bucket: string) => ({ pk: `RATE#${bucket}`, sk: 'R' }),
  samlAssertion: (id: string) => ({ pk: `SAML#${id}`, sk: 'A' }),
  samlRequest: (id: string) => ({ pk: `SAMLREQ#${id}`, sk: 'R' }),
  idToken: (tokenHash: string) => ({ pk: `IDTOKEN#${tokenHash}`, sk: 'T' }),
  /** A used recovery code, by its stored (salted) hash: each is spent once. */
  spentRecoveryCode: (storedHash: string) => ({ pk: `RCUSED#${storedHash}`, sk: 'R' }),
  ticket: (tokenHash: string) => ({ pk: `TICKET#${tokenHash}`, sk: 'T' }),
};
export const USERS_PARTITION = 'USERS';
export const sessionsOfUser = (userId: string) => `USESS#${userId}`;
