import { ConditionFailedError, type Clock, type Store } from '../platform/ports';
import { keys } from './model';
import { wholeNumber } from './session-policy';

/**
 * Fixed-window counters in the store, for rate limits and for failures per source address.
 * The store has no atomic increment both servers share, so each hit is a conditional write on
 * the previous count, retried when another request won the race.
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
    const key = keys.rate(`${bucket}#${start}`);
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const item = await this.store.get(this.table, key);
      const previous = item ? Number(item.count) : undefined;
      const count = (previous ?? 0) + 1;
      try {
        await this.store.update(this.table, key, {
          set: { count, expiresAt: Math.ceil(resetAt / 1000) + 60 },
          expect: { count: previous },
        });
        return { count, resetAt };
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
      }
    }
    // Under a storm of concurrent hits, treat the bucket as full rather than let it through.
    return { count: Number.MAX_SAFE_INTEGER, resetAt };
  }

  /**
   * Takes back one hit of the window that ends at `resetAt` (an attempt that proved right).
   * Gives up quietly under contention: an extra count only makes the limit stricter.
   */
  async undo(bucket: string, windowMs: number, resetAt: number): Promise<void> {
    const key = keys.rate(`${bucket}#${resetAt - windowMs}`);
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const item = await this.store.get(this.table, key);
      const previous = item ? Number(item.count) : 0;
      if (previous <= 0) return;
      try {
        await this.store.update(this.table, key, {
          set: { count: previous - 1 },
          expect: { count: previous },
        });
        return;
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
      }
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
