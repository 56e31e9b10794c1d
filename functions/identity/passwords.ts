import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';

/**
 * Passwords: long (NIST SP 800-63B 5.1.1.2 asks for at least 8; Vigil asks 12 for accounts
 * that reach PHI), not on the shipped list of common and breached passwords (about 49,000 from
 * @zxcvbn-ts/language-common, checked with no network call), not built from the person's own
 * name or email, and not easily guessed. Never logged, never returned.
 */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;
/** zxcvbn scores 0-4; 3 means "safely unguessable: moderate protection from offline attacks". */
const MIN_SCORE = 3;

/**
 * scrypt is memory-hard: N = 2^17, r = 8, p = 1 is the OWASP Password Storage Cheat Sheet's
 * recommendation and needs 128 * N * r = 128 MiB per hash, which makes GPU and ASIC guessing
 * costly. It takes about 200-400 ms on a 2-core machine (npm run bench measures it), inside
 * the 50-500 ms budget for a sign-in. The parameters are stored with each hash, so they can be
 * raised later and old hashes upgraded at the next sign-in.
 */
export const SCRYPT = { ln: 17, r: 8, p: 1, keyLength: 32, saltLength: 16 };
const MAX_MEMORY = 256 * 1024 * 1024;

const scrypt = promisify(crypto.scrypt) as (
  password: crypto.BinaryLike,
  salt: crypto.BinaryLike,
  keyLength: number,
  options: crypto.ScryptOptions,
) => Promise<Buffer>;

let estimator: ZxcvbnFactory | undefined;
const strength = () =>
  (estimator ??= new ZxcvbnFactory({ dictionary: { ...dictionary }, graphs: adjacencyGraphs }));

export function checkPassword(
  password: string,
  person: { name?: string; email?: string },
): { ok: true } | { ok: false; reason: string } {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) {
    return { ok: false, reason: `use at least ${PASSWORD_MIN_LENGTH} characters` };
  }
  if (length > PASSWORD_MAX_LENGTH) {
    return { ok: false, reason: `use at most ${PASSWORD_MAX_LENGTH} characters` };
  }
  const personal = personalParts(person);
  const lower = password.toLowerCase();
  if (personal.some((part) => lower.includes(part))) {
    return { ok: false, reason: 'do not use your name or email address in your password' };
  }
  const common = dictionary['passwords-common'] as string[];
  if (common.includes(lower)) {
    return { ok: false, reason: 'this password is on a list of common or breached passwords' };
  }
  const result = strength().check(password, personal);
  if (result.score < MIN_SCORE) {
    return {
      ok: false,
      reason: 'this password is too easy to guess: a longer phrase of unrelated words works well',
    };
  }
  return { ok: true };
}

function personalParts(person: { name?: string; email?: string }): string[] {
  const email = person.email?.toLowerCase() ?? '';
  const parts = [
    ...(person.name ?? '').toLowerCase().split(/[^\p{L}\p{N}]+/u),
    ...(email.split('@')[0] ?? '').split(/[^\p{L}\p{N}]+/u),
  ];
  return [...new Set(parts.filter((part) => part.length >= 3))];
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(SCRYPT.saltLength);
  const key = await derive(password, salt, SCRYPT.ln, SCRYPT.r, SCRYPT.p, SCRYPT.keyLength);
  return `$scrypt$ln=${SCRYPT.ln},r=${SCRYPT.r},p=${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const PHC =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

export async function verifyPassword(
  password: string,
  stored: string,
): Promise<{ ok: boolean; needsRehash: boolean }> {
  const match = PHC.exec(stored);
  if (!match) return { ok: false, needsRehash: false };
  const [ln, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const salt = Buffer.from(match[4] as string, 'base64');
  const expected = Buffer.from(match[5] as string, 'base64');
  if (ln > 20 || expected.length < 16) return { ok: false, needsRehash: false };
  const key = await derive(password, salt, ln, r, p, expected.length);
  const ok = crypto.timingSafeEqual(key, expected);
  const needsRehash = ln < SCRYPT.ln || r < SCRYPT.r || p < SCRYPT.p;
  return { ok, needsRehash };
}

/** Costs what a verification costs, for unknown accounts: timing tells nothing. */
export async function dummyVerify(): Promise<void> {
  await derive(
    'not a password',
    Buffer.alloc(SCRYPT.saltLength),
    SCRYPT.ln,
    SCRYPT.r,
    SCRYPT.p,
    SCRYPT.keyLength,
  );
}

function derive(
  password: string,
  salt: Buffer,
  ln: number,
  r: number,
  p: number,
  keyLength: number,
) {
  return scrypt(password.normalize('NFKC'), salt, keyLength, {
    N: 2 ** ln,
    r,
    p,
    maxmem: MAX_MEMORY,
  });
}
