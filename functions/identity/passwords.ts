import crypto from 'node:crypto';
import os from 'node:os';
import { type ZxcvbnResult, ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';

/**
 * Password rules and storage for accounts that reach PHI. The rules follow NIST SP 800-63B
 * section 5.1.1.2: length over composition, every printable character and space allowed, and
 * a refusal of passwords that are common, breached, or derived from the person's own details.
 * Passwords never enter a log, an error or a reason.
 */

/** NIST SP 800-63B asks for at least 8; accounts that reach PHI are held to 12. */
export const PASSWORD_MIN_LENGTH = 12;
/** NIST SP 800-63B asks to allow at least 64; beyond 256 nothing is gained but hashing cost. */
export const PASSWORD_MAX_LENGTH = 256;
/**
 * zxcvbn's score 3: an estimated 10^8 guesses or more, "safely unguessable" online and
 * moderately protected offline behind a slow hash.
 */
const MIN_STRENGTH_SCORE = 3;
/** Shorter name or email fragments ("al", "jo") occur by chance in honest passwords. */
const MIN_PERSONAL_PART_LENGTH = 3;

type Person = { name?: string; email?: string };
export type PasswordVerdict = { ok: true } | { ok: false; reason: string };

/**
 * The shipped list: @zxcvbn-ts/language-common's `passwords-common` (about 49,000 common and
 * breached passwords), checked locally so no password ever leaves the process.
 */
const COMMON_PASSWORDS = dictionary['passwords-common'];

let estimator: ZxcvbnFactory | undefined;
const STRENGTH_SCORED_LENGTH = 64;
let commonSet: Set<string> | undefined;

/**
 * English from @zxcvbn-ts/language-en: its common words, first names and word sequences
 * (months, seasons, numbers). Its surname and Wikipedia lists are left out, as they would take
 * the sign-in function's zip past 1 MB; its index loads every list, so the files are required
 * one by one, and only when a password is first judged.
 */
function englishDictionary(): Record<string, string[]> {
  return {
    'commonWords-en': require('@zxcvbn-ts/language-en/dist/commonWords.json.cjs') as string[],
    'firstnames-en': require('@zxcvbn-ts/language-en/dist/firstnames.json.cjs') as string[],
    ...(require('@zxcvbn-ts/language-en/dist/wordSequences.json.cjs') as Record<string, string[]>),
  };
}

/**
 * Built on first use: loading and ranking the dictionaries takes a few hundred milliseconds.
 * No translations are given, so warnings stay the keys STRENGTH_HINTS words.
 */
function strengthEstimator(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({
    dictionary: { ...dictionary, ...englishDictionary() },
    graphs: adjacencyGraphs,
    // Scoring time grows steeply with length; what follows the first 64 characters only adds
    // strength, so the estimate of the prefix is a floor, and a long input costs milliseconds.
    maxLength: STRENGTH_SCORED_LENGTH,
  });
  return estimator;
}

function isCommon(folded: string): boolean {
  commonSet ??= new Set(COMMON_PASSWORDS.map(fold));
  return commonSet.has(folded);
}

/** Case- and accent-insensitive form, so "José" and "JOSE" are the same word. */
function fold(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

/** The person's name parts, their email's local part and its parts, folded. */
function personalParts(person: Person): string[] {
  const local = fold(person.email ?? '').split('@')[0] ?? '';
  const parts = [
    ...fold(person.name ?? '').split(/[^\p{L}\p{N}]+/u),
    local,
    ...local.split(/[^\p{L}\p{N}]+/u),
  ];
  return [...new Set(parts.filter((part) => [...part].length >= MIN_PERSONAL_PART_LENGTH))];
}

/** What to change, by zxcvbn's warning; the password itself is never quoted. */
const STRENGTH_HINTS: Record<string, string> = {
  straightRow: 'avoid rows of keys such as "asdfgh"',
  keyPattern: 'avoid keyboard patterns',
  simpleRepeat: 'avoid repeated characters',
  extendedRepeat: 'avoid repeated groups of characters',
  sequences: 'avoid sequences such as "abc" or "6789"',
  recentYears: 'avoid recent years',
  dates: 'avoid dates',
  topTen: 'it is very close to one of the most used passwords',
  topHundred: 'it is close to one of the most used passwords',
  common: 'it is close to a common password',
  similarToCommon: 'it is close to a common password',
  wordByItself: 'a single word is easy to guess',
  namesByThemselves: 'names are easy to guess',
  commonNames: 'names are easy to guess',
  userInputs: 'do not use your own details',
  decoratedWord: 'one word with digits or symbols added is easy to guess',
};

function tooGuessable(warning: string | null): string {
  const hint = (warning && STRENGTH_HINTS[warning]) || 'add more unrelated words';
  const advice = 'A phrase of four or more unrelated words works well.';
  return `This password is too easy to guess (${hint}). ${advice}`;
}

/**
 * One dictionary word and nothing else but digits and symbols, as in "Summer2024!!". zxcvbn
 * prices a tail such as "2024!!" as random characters, which can lift the whole to score 3;
 * guessers try exactly these shapes first, so such a password needs score 4.
 */
function isDecoratedWord(result: ZxcvbnResult): boolean {
  const words = result.sequence.filter((match) => match.pattern === 'dictionary');
  const rest = result.sequence.filter((match) => match.pattern !== 'dictionary');
  return words.length === 1 && rest.every((match) => !/\p{L}/u.test(match.token));
}

/**
 * Judges a new password for `person`. Length is counted in Unicode code points of the NFKC
 * form, the form that is hashed (NIST SP 800-63B 5.1.1.2).
 */
export function checkPassword(password: string, person: Person): PasswordVerdict {
  const normalised = password.normalize('NFKC');
  const length = [...normalised].length;
  if (length < PASSWORD_MIN_LENGTH) {
    return { ok: false, reason: `Use at least ${PASSWORD_MIN_LENGTH} characters.` };
  }
  if (length > PASSWORD_MAX_LENGTH) {
    return { ok: false, reason: `Use at most ${PASSWORD_MAX_LENGTH} characters.` };
  }
  const folded = fold(normalised);
  const personal = personalParts(person);
  if (personal.some((part) => folded.includes(part))) {
    return { ok: false, reason: 'Do not use your name or email address in your password.' };
  }
  if (isCommon(folded)) {
    return {
      ok: false,
      reason: 'This password is on a list of common or breached passwords. Choose another.',
    };
  }
  const result = strengthEstimator().check(normalised, personal);
  if (result.score < MIN_STRENGTH_SCORE) {
    return { ok: false, reason: tooGuessable(result.feedback.warning) };
  }
  if (result.score === MIN_STRENGTH_SCORE && isDecoratedWord(result)) {
    return { ok: false, reason: tooGuessable('decoratedWord') };
  }
  return { ok: true };
}

/**
 * scrypt (RFC 7914) is memory-hard, which makes guessing on GPUs and ASICs costly, and is built
 * into node (Argon2id, the OWASP Password Storage Cheat Sheet's first choice, is not in Node
 * 20). N = 2^17, r = 8, p = 1 is that sheet's minimum for scrypt and uses 128 * N * r = 128 MiB
 * per hash. The target is 50-500 ms per hash on a 2-core machine, slow for a guesser and
 * bearable at sign-in; `npm run bench` measures it (350-450 ms on 2 cores when written). The
 * 16-byte random salt exceeds NIST SP 800-63B 5.1.1.2's 32 bits; the 32-byte key is the output
 * of the HMAC-SHA-256 scrypt ends with, and a longer one adds no strength. Each hash records its
 * own parameters, so they can be raised later and older hashes upgraded at the next sign-in.
 */
export const SCRYPT = { ln: 17, r: 8, p: 1, saltLength: 16, keyLength: 32 } as const;

type ScryptParams = { ln: number; r: number; p: number };

/**
 * Bytes OpenSSL needs for scrypt: 128 * r * (N + 2) for V plus 128 * r * p for B. Node refuses
 * anything above `maxmem` (32 MiB by default), so it is set from the parameters each time.
 */
function scryptMemory({ ln, r, p }: ScryptParams): number {
  return 128 * r * (2 ** ln + 2 + p);
}

/** Bytes mixed per hash, which bounds both its time and (as p >= 1) its memory. */
function scryptWork({ ln, r, p }: ScryptParams): number {
  return 128 * r * 2 ** ln * p;
}

/**
 * A stored string asking for more than four times today's work is refused rather than allowed
 * to exhaust the function's memory or time; four times leaves room to raise the parameters.
 */
const MAX_STORED_WORK = 4 * scryptWork(SCRYPT);
/** Stored keys outside 16-64 bytes are not ours. */
const KEY_LENGTH_RANGE = [16, 64] as const;
/** RFC 8018 section 4.1: a salt of at least eight octets; shorter ones are not ours. */
const MIN_STORED_SALT_BYTES = 8;

/** Hashing could not start soon enough: the process is busy with others; try again shortly. */
export class PasswordHashingBusy extends Error {
  constructor() {
    super('too many password checks are waiting');
    this.name = 'PasswordHashingBusy';
  }
}

/**
 * Hashes run a few at a time, each on a libuv thread with 128 MiB, and a short queue waits for
 * them; past that a request is turned away at once instead of waiting behind hundreds of others
 * until every one times out. On Lambda a container serves one request at a time, so only the
 * local platform, which serves many from one process, ever queues.
 */
export const HASH_CONCURRENCY = Math.max(2, os.availableParallelism());
export const HASH_QUEUE_LIMIT = 8 * HASH_CONCURRENCY;

let running = 0;
const waiting: (() => void)[] = [];

async function withHashSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= HASH_CONCURRENCY) {
    if (waiting.length >= HASH_QUEUE_LIMIT) throw new PasswordHashingBusy();
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    running += 1;
  }
  try {
    return await work();
  } finally {
    // The slot passes straight to the next in line, so `running` counts it still.
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  }
}

function scrypt(password: string, salt: Buffer, keyLength: number, params: ScryptParams) {
  const options = { N: 2 ** params.ln, r: params.r, p: params.p, maxmem: scryptMemory(params) };
  return withHashSlot(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        crypto.scrypt(password.normalize('NFKC'), salt, keyLength, options, (error, key) =>
          error ? reject(error) : resolve(key),
        ),
      ),
  );
}

/** PHC string format with unpadded base64, as the PHC format asks; padding is tolerated. */
function encode(params: ScryptParams, salt: Buffer, key: Buffer): string {
  const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

const B64 = '[A-Za-z0-9+/]+={0,2}';
const PHC_SCRYPT = new RegExp(
  `^\\$scrypt\\$ln=(\\d{1,2}),r=(\\d{1,3}),p=(\\d{1,3})\\$(${B64})\\$(${B64})$`,
);

type StoredHash = { params: ScryptParams; salt: Buffer; key: Buffer };

function decode(stored: string): StoredHash | undefined {
  const match = PHC_SCRYPT.exec(stored);
  if (!match) return undefined;
  const [ln, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const salt = Buffer.from(match[4] as string, 'base64');
  const key = Buffer.from(match[5] as string, 'base64');
  const params = { ln, r, p };
  const sane =
    ln >= 1 &&
    r >= 1 &&
    p >= 1 &&
    scryptWork(params) <= MAX_STORED_WORK &&
    salt.length >= MIN_STORED_SALT_BYTES &&
    key.length >= KEY_LENGTH_RANGE[0] &&
    key.length <= KEY_LENGTH_RANGE[1];
  return sane ? { params, salt, key } : undefined;
}

function weakerThanCurrent({ params, salt, key }: StoredHash): boolean {
  return (
    params.ln < SCRYPT.ln ||
    params.r < SCRYPT.r ||
    params.p < SCRYPT.p ||
    salt.length < SCRYPT.saltLength ||
    key.length < SCRYPT.keyLength
  );
}

async function matches(password: string, stored: StoredHash): Promise<boolean> {
  const key = await scrypt(password, stored.salt, stored.key.length, stored.params);
  return crypto.timingSafeEqual(key, stored.key);
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(SCRYPT.saltLength);
  const key = await scrypt(password, salt, SCRYPT.keyLength, SCRYPT);
  return encode(SCRYPT, salt, key);
}

/**
 * Checks `password` against a stored hash, with the parameters the hash records.
 * `needsRehash` is true when the password is right and the hash is weaker than `SCRYPT`, so the
 * caller can store a fresh hash while it holds the password. A malformed stored hash never
 * matches, and costs as much as a real verification.
 */
export async function verifyPassword(
  password: string,
  stored: string,
): Promise<{ ok: boolean; needsRehash: boolean }> {
  const decoded = decode(stored);
  if (!decoded) {
    await dummyVerify();
    return { ok: false, needsRehash: false };
  }
  const ok = await matches(password, decoded);
  return { ok, needsRehash: ok && weakerThanCurrent(decoded) };
}

let dummy: StoredHash | undefined;

/**
 * The cost of one verification at the current parameters, for sign-ins to unknown accounts:
 * the answer then takes as long as for a real account with a wrong password (OWASP
 * Authentication Cheat Sheet, "authentication responses").
 */
export async function dummyVerify(): Promise<void> {
  dummy ??= {
    params: SCRYPT,
    salt: crypto.randomBytes(SCRYPT.saltLength),
    key: crypto.randomBytes(SCRYPT.keyLength),
  };
  await matches('', dummy);
}
