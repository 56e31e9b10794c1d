import { SCRYPT, hashPassword, verifyPassword } from '../functions/identity/passwords';

/** Median time to hash a password at the configured scrypt parameters. */
export async function benchPasswordHash(
  samples = 5,
): Promise<{ medianMs: number; params: string }> {
  const times: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const started = performance.now();
    const stored = await hashPassword(`benchmark passphrase ${i}`);
    times.push(performance.now() - started);
    if (!(await verifyPassword(`benchmark passphrase ${i}`, stored)).ok)
      throw new Error('hash did not verify');
  }
  times.sort((a, b) => a - b);
  return {
    medianMs: times[Math.floor(times.length / 2)] as number,
    params: `scrypt N=2^${SCRYPT.ln}, r=${SCRYPT.r}, p=${SCRYPT.p}`,
  };
}
