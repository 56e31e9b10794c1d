/**
 * Session policy, read from configuration once: idle and absolute limits (automatic logoff,
 * 45 CFR 164.312(a)(2)(iii)), concurrent sessions, client binding and step-up freshness.
 */
export interface SessionPolicy {
  idleMs: number;
  absoluteMs: number;
  maxConcurrent: number;
  onLimit: 'end-oldest' | 'refuse';
  binding: 'ip' | 'device' | 'none';
  onBindingMismatch: 'end' | 'step-up';
  /** How long an MFA code counts as fresh for sensitive operations. */
  stepUpMs: number;
  /**
   * Activity is written at most once per this span, and reads within it are served without a
   * write. Idle expiry is then exact to within this span, always on the early side: a session
   * may end up to this much sooner than fifteen quiet minutes, never later. 0 writes on every
   * request. A write costs five times a consistent read on DynamoDB and takes longer.
   */
  touchMs: number;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export const DEFAULT_SESSION_POLICY: SessionPolicy = {
  idleMs: 15 * MINUTE_MS,
  absoluteMs: 12 * HOUR_MS,
  maxConcurrent: 3,
  onLimit: 'end-oldest',
  binding: 'ip',
  onBindingMismatch: 'end',
  stepUpMs: 5 * MINUTE_MS,
  touchMs: 5_000,
};

const ON_LIMIT: readonly SessionPolicy['onLimit'][] = ['end-oldest', 'refuse'];
const BINDINGS: readonly SessionPolicy['binding'][] = ['ip', 'device', 'none'];
const ON_MISMATCH: readonly SessionPolicy['onBindingMismatch'][] = ['end', 'step-up'];

type Env = Record<string, string | undefined>;

export function sessionPolicyFrom(env: Env): SessionPolicy {
  const d = DEFAULT_SESSION_POLICY;
  const policy: SessionPolicy = {
    idleMs: wholeNumber(env, 'VIGIL_SESSION_IDLE_MINUTES', d.idleMs / MINUTE_MS) * MINUTE_MS,
    absoluteMs: wholeNumber(env, 'VIGIL_SESSION_ABSOLUTE_HOURS', d.absoluteMs / HOUR_MS) * HOUR_MS,
    maxConcurrent: wholeNumber(env, 'VIGIL_SESSION_MAX_CONCURRENT', d.maxConcurrent),
    onLimit: oneOf(env, 'VIGIL_SESSION_ON_LIMIT', ON_LIMIT, d.onLimit),
    binding: oneOf(env, 'VIGIL_SESSION_BINDING', BINDINGS, d.binding),
    onBindingMismatch: oneOf(
      env,
      'VIGIL_SESSION_ON_BINDING_MISMATCH',
      ON_MISMATCH,
      d.onBindingMismatch,
    ),
    stepUpMs: wholeNumber(env, 'VIGIL_STEP_UP_MINUTES', d.stepUpMs / MINUTE_MS) * MINUTE_MS,
    touchMs: wholeNumber(env, 'VIGIL_SESSION_TOUCH_SECONDS', d.touchMs / 1000, 0) * 1000,
  };
  if (policy.idleMs > policy.absoluteMs) {
    throw new Error(
      'configuration: VIGIL_SESSION_IDLE_MINUTES must not exceed VIGIL_SESSION_ABSOLUTE_HOURS',
    );
  }
  if (policy.touchMs >= policy.idleMs) {
    throw new Error(
      'configuration: VIGIL_SESSION_TOUCH_SECONDS must be shorter than VIGIL_SESSION_IDLE_MINUTES',
    );
  }
  return policy;
}

/** A whole number of at least `min` from the environment; errors name the variable. */
export function wholeNumber(env: Env, name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`configuration: ${name} must be a whole number >= ${min}`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const match = allowed.find((value) => value === raw);
  if (!match) throw new Error(`configuration: ${name} must be one of ${allowed.join(', ')}`);
  return match;
}
