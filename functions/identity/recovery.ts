import crypto from 'node:crypto';

/**
 * One-time recovery codes for a lost authenticator, shown once and stored only as hashes.
 *
 * A code is 12 symbols of Crockford's base32 (5 bits each, 60 bits), written lowercase in
 * three groups: `7k2m-q9xd-4hrt`. The alphabet has no I, L, O or U, and reading a code back
 * maps the look-alikes o to 0 and i, l to 1, so a code copied by hand still matches.
 *
 * Each is stored as `sha256$<salt>$<hash>`, SHA-256 over a random 16-byte salt and the code.
 * No slow hash is needed: a slow hash makes up for the low entropy of passwords people choose,
 * while these codes are uniformly random, so no dictionary shortens the search and it must
 * cover half of 2^60 codes on average. The salt keeps one guess from testing every stored code
 * at once.
 */

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const BITS_PER_SYMBOL = 5;
const GROUPS = 3;
const GROUP_LENGTH = 4;
const CODE_LENGTH = GROUPS * GROUP_LENGTH;
const LOOK_ALIKES: Record<string, string> = { o: '0', i: '1', l: '1' };
const SALT_BYTES = 16;
const STORED = /^sha256\$([0-9a-f]{32})\$([0-9a-f]{64})$/;

/** Each symbol takes 5 of a random byte's 8 bits, so every symbol is equally likely. */
function randomSymbols(count: number): string {
  const bytes = crypto.randomBytes(count);
  return [...bytes].map((byte) => ALPHABET[byte >> (8 - BITS_PER_SYMBOL)] as string).join('');
}

/**
 * A code always holds a letter, so it can never be taken for an authenticator's numeric code
 * where either is typed into the same field. Redrawing the all-digit ones (fewer than one in a
 * million) costs a negligible fraction of a bit.
 */
function newCode(): string {
  let symbols: string;
  do symbols = randomSymbols(CODE_LENGTH);
  while (/^\d+$/.test(symbols));
  const groups = symbols.match(new RegExp(`.{${GROUP_LENGTH}}`, 'g')) as string[];
  return groups.join('-');
}

/** Case, spaces, dashes and look-alike letters do not matter when a code is typed back. */
function normalise(code: string): string {
  return code
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s\p{Pd}]+/gu, '')
    .replace(/[oil]/g, (letter) => LOOK_ALIKES[letter] as string);
}

function digest(salt: Buffer, normalised: string): Buffer {
  return crypto.createHash('sha256').update(salt).update(normalised, 'utf8').digest();
}

function store(code: string): string {
  const salt = crypto.randomBytes(SALT_BYTES);
  return `sha256$${salt.toString('hex')}$${digest(salt, normalise(code)).toString('hex')}`;
}

/** `count` distinct codes to show once, and what to store for each, in the same order. */
export function newRecoveryCodes(count = 10): { codes: string[]; hashes: string[] } {
  const codes = new Set<string>();
  while (codes.size < count) codes.add(newCode());
  return { codes: [...codes], hashes: [...codes].map(store) };
}

/**
 * The index of the stored hash `code` matches, or -1. Every stored hash is computed and
 * compared in constant time, so the time taken tells nothing of which one matched, if any.
 */
export function matchRecoveryCode(code: string, hashes: string[]): number {
  const normalised = normalise(code);
  const wellFormed = normalised.length === CODE_LENGTH;
  let found = -1;
  hashes.forEach((stored, index) => {
    const parts = STORED.exec(stored);
    if (!parts) return;
    const expected = Buffer.from(parts[2] as string, 'hex');
    const actual = digest(Buffer.from(parts[1] as string, 'hex'), normalised);
    if (crypto.timingSafeEqual(actual, expected) && wellFormed && found === -1) found = index;
  });
  return found;
}
