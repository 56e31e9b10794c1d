import crypto from 'node:crypto';

/**
 * One-time recovery codes for a lost authenticator. Each is 12 characters from a 32-letter
 * alphabet without look-alikes (60 bits), shown once and stored as SHA-256: codes this random
 * cannot be guessed from their hash, so a slow password hash would add nothing.
 */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'.padEnd(32, 'z').slice(0, 32);
const GROUPS = 3;
const GROUP_LENGTH = 4;

const hash = (code: string) => crypto.hash('sha256', normalise(code), 'hex');
const normalise = (code: string) => code.toLowerCase().replace(/[\s-]+/g, '');

function newCode(): string {
  const bytes = crypto.randomBytes(GROUPS * GROUP_LENGTH);
  const letters = [...bytes].map((byte) => ALPHABET[byte % 32] as string);
  const groups = [];
  for (let g = 0; g < GROUPS; g += 1)
    groups.push(letters.slice(g * GROUP_LENGTH, (g + 1) * GROUP_LENGTH).join(''));
  return groups.join('-');
}

export function newRecoveryCodes(count = 10): { codes: string[]; hashes: string[] } {
  const codes = new Set<string>();
  while (codes.size < count) codes.add(newCode());
  return { codes: [...codes], hashes: [...codes].map(hash) };
}

/** Index of the hash the code matches, or -1; every hash is compared, in constant time. */
export function matchRecoveryCode(code: string, hashes: string[]): number {
  const candidate = Buffer.from(hash(code), 'hex');
  let found = -1;
  hashes.forEach((stored, index) => {
    const expected = Buffer.from(stored, 'hex');
    if (expected.length === candidate.length && crypto.timingSafeEqual(expected, candidate))
      found = index;
  });
  return found;
}
