import { ConditionFailedError, type Clock, type Store } from '../platform/ports';
import { keys } from './model';
import { wholeNumber } from './session-policy';

/**
 * Fixed-window counters in the store, for rate limits and for failures per source address.
 * Each hit is one atomic add, so any number of servers and concurrent requests count exactly.
 */
export class WindowCounter {
  constructor(
    private readonly store: Store,
    private readonly table: string,
    private readonly clock: Clock,
  ) {}

  async hit(bucket: string, windowMs: number): Promise<{ count: number; resetAt: number }> {
    const now = this.clock.now().getTime();
    const start = now - (now % windowMs);
    const resetAt = start + windowMs;
    const item = await this.store.update(this.table, keys.rate(`${bucket}#${start}`), {
      add: { count: 1 },
      set: { expiresAt: Math.ceil(resetAt / 1000) + 60 },
    });
    return { count: Number(item.count), resetAt };
  }

  /** Takes back one hit of the window that ends at `resetAt` (an attempt that proved right). */
  async undo(bucket: string, windowMs: number, resetAt: number): Promise<void> {
    const key = keys.rate(`${bucket}#${resetAt - windowMs}`);
    try {
      await this.store.update(this.table, key, { add: { count: -1 }, expect: { pk: key.pk } });
    } catch (error) {
      // The window is gone (expired and removed): nothing is left to take back.
      if (!(error instanceof ConditionFailedError)) throw error;
    }
  }

  async peek(bucket: string, windowMs: number): Promise<{ count: number; resetAt: number }> {
    const now = this.clock.now().getTime();
    const start = now - (now % windowMs);
    const item = await this.store.get(this.table, keys.rate(`${bucket}#${start}`));
    return { count: item ? Number(item.count) : 0, resetAt: start + windowMs };
  }
}

export interface LockoutPolicy {
  /** Consecutive failures that lock an account. */
  maxFailures: number;
  /** After this long a locked account unlocks by itself; 0 means only an officer unlocks. */
  coolDownMs: number;
  /** Failures from one address, across accounts, that throttle it for the window. */
  maxFailuresPerIp: number;
  ipWindowMs: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = {
  maxFailures: 5,
  coolDownMs: 30 * 60_000,
  maxFailuresPerIp: 20,
  ipWindowMs: 15 * 60_000,
};

export function lockoutPolicyFrom(env: Record<string, string | undefined>): LockoutPolicy {
  const d = DEFAULT_LOCKOUT;
  return {
    maxFailures: wholeNumber(env, 'VIGIL_LOCKOUT_MAX_FAILURES', d.maxFailures),
    coolDownMs:
      wholeNumber(env, 'VIGIL_LOCKOUT_COOLDOWN_MINUTES', d.coolDownMs / 60_000, 0) * 60_000,
    maxFailuresPerIp: wholeNumber(env, 'VIGIL_LOCKOUT_MAX_FAILURES_PER_IP', d.maxFailuresPerIp),
    ipWindowMs: d.ipWindowMs,
  };
}
