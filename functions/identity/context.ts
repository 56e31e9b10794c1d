import crypto from 'node:crypto';
import { runtime } from '../platform/runtime';
import { auditLog } from '../audit/context';
import type { IdentityAudit, IdentityAuditEvent } from './model';
import { Users } from './users';
import { SessionService, sessionPolicyFrom } from './sessions';
import { WindowCounter, lockoutPolicyFrom, type LockoutPolicy } from './counters';
import { OidcVerifier, oidcConfigFrom } from './oidc';
import { REQUEST_TTL_MS, SamlVerifier, samlConfigFrom, type RequestLedger } from './saml';
import { keys } from './model';
import { ConditionFailedError, type Sealer } from '../platform/ports';

/** The stream that records sign-ins, lockouts, MFA and session events. */
export const IDENTITY_STREAM = 'vigil-identity';

export interface Identity {
  users: Users;
  sessions: SessionService;
  counters: WindowCounter;
  lockout: LockoutPolicy;
  oidc: OidcVerifier;
  saml?: SamlVerifier;
  /** Seals TOTP seeds before they are stored. */
  sealer: Sealer;
  audit: IdentityAudit;
  publicUrl: string;
  /** Federated users: provisioned from verified claims, or linked to accounts made first. */
  provisioning: 'auto' | 'existing';
}

let current: Identity | undefined;

/**
 * Identity services over the process runtime. Their settings are read once here, from the
 * same environment the runtime's configuration came from.
 */
export function identity(env: Record<string, string | undefined> = process.env): Identity {
  if (current) return current;
  const rt = runtime();
  const table = rt.config.identityTable;
  const audit: IdentityAudit = (event) => recordIdentityEvent(event);
  const samlConfig = samlConfigFrom(env);
  current = {
    users: new Users(rt.store, table, rt.clock),
    sessions: new SessionService(rt.store, table, rt.clock, sessionPolicyFrom(env), audit),
    counters: new WindowCounter(rt.store, table, rt.clock),
    lockout: lockoutPolicyFrom(env),
    oidc: new OidcVerifier(oidcConfigFrom(env), { clock: () => rt.clock.now() }),
    saml: samlConfig
      ? new SamlVerifier(
          samlConfig,
          { replay: rememberAssertion, requests: samlRequests(table) },
          () => rt.clock.now(),
        )
      : undefined,
    sealer: rt.sealer,
    audit,
    publicUrl: rt.config.publicUrl,
    provisioning: provisioningFrom(env.VIGIL_FEDERATED_PROVISIONING),
  };
  return current;
}

function provisioningFrom(value: string | undefined): 'auto' | 'existing' {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'existing') return 'existing';
  throw new Error('configuration: VIGIL_FEDERATED_PROVISIONING must be "auto" or "existing"');
}

export function resetIdentity(): void {
  current = undefined;
}

/** SAML assertion ids are remembered until they expire, so none can be replayed. */
function rememberAssertion(id: string, notOnOrAfter: Date): Promise<boolean> {
  return firstUse(keys.samlAssertion(id), notOnOrAfter);
}

/**
 * An OIDC ID token is exchanged once; the hash of what was signed (header and payload) is
 * remembered until it expires. The signature is left out because it is not unique: an ECDSA
 * signature (r, s) verifies as (r, n - s) too, so one token has two valid spellings.
 */
export function spendIdToken(idToken: string, validUntil: Date): Promise<boolean> {
  const signed = idToken.slice(0, idToken.lastIndexOf('.'));
  return firstUse(keys.idToken(crypto.hash('sha256', signed, 'hex')), validUntil);
}

/** True the first time a key is recorded; the record outlives `until` by five minutes. */
async function firstUse(key: { pk: string; sk: string }, until: Date): Promise<boolean> {
  const rt = runtime();
  try {
    await rt.store.put(
      rt.config.identityTable,
      { ...key, expiresAt: Math.ceil(until.getTime() / 1000) + 300 },
      { ifAbsent: true },
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionFailedError) return false;
    throw error;
  }
}

/** Sign-in requests sent to the SAML identity provider, each answerable once. */
function samlRequests(table: string): RequestLedger {
  const rt = runtime();
  // Kept a day past their use so an answer that comes late is still known as answered.
  const expiresAt = () => Math.ceil((rt.clock.now().getTime() + REQUEST_TTL_MS) / 1000) + 86_400;
  return {
    save: (id, issuedAt) =>
      rt.store.put(
        table,
        { ...keys.samlRequest(id), issuedAt, expiresAt: expiresAt() },
        { ifAbsent: true },
      ),
    issuedAt: async (id) => {
      const item = await rt.store.get(table, keys.samlRequest(id));
      return item && !item.answeredAt ? String(item.issuedAt) : undefined;
    },
    answer: async (id) => {
      try {
        await rt.store.update(table, keys.samlRequest(id), {
          // node-saml has found the request by now; the condition makes its answer single.
          set: { answeredAt: rt.clock.now().toISOString(), expiresAt: expiresAt() },
          expect: { answeredAt: undefined },
        });
        return true;
      } catch (error) {
        if (error instanceof ConditionFailedError) return false;
        throw error;
      }
    },
  };
}

/** Identity events go to the audit log as native events; no password, code or token. */
export async function recordIdentityEvent(event: IdentityAuditEvent): Promise<void> {
  const rt = runtime();
  await auditLog().ingest(
    { source: 'api', stream: IDENTITY_STREAM, producer: 'vigil' },
    [
      {
        ref: 0,
        // Each event is its own record, however alike two of them look.
        sourceRef: `identity:${crypto.randomUUID()}`,
        decoded: {
          format: 'native',
          parsed: {
            ok: true,
            value: {
              userId: event.actorId,
              action: event.action,
              resourceType: event.resourceType,
              resourceId: event.resourceId,
              ipAddress: event.ipAddress,
              userAgent: event.userAgent?.slice(0, 1024),
              sessionId: event.sessionId,
              timestamp: rt.clock.now().toISOString(),
              reason: event.reason ? `${event.event}: ${event.reason}` : event.event,
              application: 'vigil-identity',
              outcome: event.outcome,
            },
          },
        },
      },
    ],
    { checkpoint: false },
  );
}
