import crypto from 'node:crypto';
import {
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  SCRYPT,
  checkPassword,
  dummyVerify,
  HASH_CONCURRENCY,
  HASH_QUEUE_LIMIT,
  PasswordHashingBusy,
  hashPassword,
  verifyPassword,
} from '../../functions/identity/passwords';

const alan = { name: 'Alan Turing', email: 'alan.turing@hospital.example' };
const PASSPHRASE = 'lantern quietly orbit marmalade';

/** A hash in the stored format, made with node's scrypt directly rather than the module. */
function storedWith(password: string, ln: number, r = 8, p = 1, padded = true): string {
  const salt = crypto.randomBytes(16);
  const key = crypto.scryptSync(password, salt, 32, { N: 2 ** ln, r, p });
  const b64 = (bytes: Buffer) => {
    const text = bytes.toString('base64');
    return padded ? text : text.replace(/=+$/, '');
  };
  return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
}

describe('checkPassword: length', () => {
  it(`refuses fewer than ${PASSWORD_MIN_LENGTH} characters and says how many are needed`, () => {
    const verdict = checkPassword('orbit lemon', alan);

    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('at least 12') });
  });

  it('counts Unicode code points, not UTF-16 units', () => {
    const sixEmoji = '🦊🐙🌵🎻🚲🧭'; // 12 UTF-16 units, 6 characters
    const twelveEmoji = '🦊🐙🌵🎻🚲🧭🪁🍋🛶🧩🪴🎈';

    expect(checkPassword(sixEmoji, alan)).toMatchObject({ ok: false, reason: /at least 12/ });
    expect(checkPassword(twelveEmoji, alan)).toEqual({ ok: true });
  });

  it(`refuses more than ${PASSWORD_MAX_LENGTH} characters, and accepts exactly that many`, () => {
    const long = crypto.createHash('sha512').update('seed').digest('hex').repeat(3);
    const atLimit = long.slice(0, PASSWORD_MAX_LENGTH);

    expect(checkPassword(`${atLimit}x`, alan)).toMatchObject({ ok: false, reason: /at most 256/ });
    expect(checkPassword(atLimit, alan)).toEqual({ ok: true });
  });
});

describe('checkPassword: the shipped list and guessability', () => {
  it.each(['Password1234', 'password1234', '1qaz2wsx3edc4rfv'])(
    'refuses %s, which is on the list of common passwords',
    (password) => {
      expect(checkPassword(password, alan)).toEqual({
        ok: false,
        reason: expect.stringContaining('common or breached'),
      });
    },
  );

  it.each([
    ['P@ssw0rd1234', 'common password'],
    ['aaaaaaaaaaaaaaaa', 'repeated'],
    ['abcdefghijklmnop', 'sequences'],
  ])('refuses the guessable %s with a hint about %s', (password, hint) => {
    const verdict = checkPassword(password, alan);

    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining(hint) });
  });

  it.each(['Summer2024!!', 'Baseball1234!'])(
    'refuses %s, one English word with digits and symbols added, as too easy to guess',
    (password) => {
      expect(checkPassword(password, alan)).toEqual({
        ok: false,
        reason: expect.stringContaining('too easy to guess'),
      });
    },
  );

  it('knows English words beyond the common-password lists', () => {
    // "orchestra" is in the English word list only.
    expect(checkPassword('Orchestra2024!', alan)).toEqual({
      ok: false,
      reason: expect.stringContaining('too easy to guess'),
    });
  });

  it('accepts a passphrase of unrelated words joined by hyphens, with a capital and a digit', () => {
    expect(checkPassword('correct-larch-Wombat-9-cycle', alan)).toEqual({ ok: true });
  });

  it('accepts a long phrase of unrelated words', () => {
    expect(checkPassword(PASSPHRASE, alan)).toEqual({ ok: true });
    expect(checkPassword('correct horse battery staple 42', alan)).toEqual({ ok: true });
  });

  it('never repeats the password in its reason', () => {
    for (const password of ['Password1234', 'qwertyuiop12', 'alan turing rules!', 'short']) {
      const verdict = checkPassword(password, alan);

      expect(verdict.ok).toBe(false);
      expect(JSON.stringify(verdict).toLowerCase()).not.toContain(password.toLowerCase());
    }
  });
});

describe("checkPassword: the person's own details", () => {
  it.each([
    ['alan turing rules!', 'the full name'],
    ['Marmalade-TURING-orbit', 'a name part, in any case'],
    ['orbit alan.turing lemon', 'the email local part'],
  ])('refuses %s (%s)', (password) => {
    expect(checkPassword(password, alan)).toEqual({
      ok: false,
      reason: expect.stringContaining('name or email'),
    });
  });

  it('refuses a part of an email local part unrelated to the name', () => {
    const person = { name: 'Alan Turing', email: 'ajt1912@hospital.example' };

    expect(checkPassword('orbit ajt1912 marmalade', person).ok).toBe(false);
  });

  it('matches names without regard to accents', () => {
    const person = { name: 'José Núñez', email: 'jnunez@hospital.example' };

    expect(checkPassword('lantern Nunez orbit marmalade', person).ok).toBe(false);
  });

  it('ignores name parts shorter than three characters', () => {
    const person = { name: 'Jo Li', email: 'jo.li@hospital.example' };

    expect(checkPassword('lilac jolly orbit marmalade', person)).toEqual({ ok: true });
  });

  it('works without a name or email', () => {
    expect(checkPassword(PASSPHRASE, {})).toEqual({ ok: true });
  });
});

describe('hashPassword and verifyPassword', () => {
  let stored: string;
  beforeAll(async () => {
    stored = await hashPassword(PASSPHRASE);
  });

  it('writes a PHC string with the current parameters, a 16-byte salt and a 32-byte key', () => {
    expect(stored).toMatch(/^\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  });

  it('verifies the right password, with no rehash needed', async () => {
    await expect(verifyPassword(PASSPHRASE, stored)).resolves.toEqual({
      ok: true,
      needsRehash: false,
    });
  });

  it('refuses a wrong password', async () => {
    await expect(verifyPassword(`${PASSPHRASE}!`, stored)).resolves.toEqual({
      ok: false,
      needsRehash: false,
    });
  });

  it('salts each hash', async () => {
    const again = await hashPassword(PASSPHRASE);

    expect(again).not.toBe(stored);
    await expect(verifyPassword(PASSPHRASE, again)).resolves.toMatchObject({ ok: true });
  });

  it('treats the composed and decomposed forms of a character as the same password', async () => {
    const composed = await hashPassword('café lantern orbit marmalade');

    await expect(
      verifyPassword('cafe\u0301 lantern orbit marmalade', composed),
    ).resolves.toMatchObject({ ok: true });
  });

  it('refuses a hash whose key, salt or parameters were altered', async () => {
    const [, , params, salt, key] = stored.split('$') as string[];
    const flip = (text: string) => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
    const altered = [
      `$scrypt$${params}$${salt}$${flip(key as string)}`,
      `$scrypt$${params}$${flip(salt as string)}$${key}`,
      `$scrypt$${(params as string).replace('ln=17', 'ln=16')}$${salt}$${key}`,
    ];

    for (const hash of altered) {
      await expect(verifyPassword(PASSPHRASE, hash)).resolves.toEqual({
        ok: false,
        needsRehash: false,
      });
    }
  });

  it('refuses malformed hashes, and parameters beyond the allowed cost untried', async () => {
    const [, , , salt, key] = stored.split('$') as string[];
    for (const hash of ['', 'not a hash', `$argon2id$v=19$${salt}$${key}`]) {
      await expect(verifyPassword(PASSPHRASE, hash)).resolves.toEqual({
        ok: false,
        needsRehash: false,
      });
    }
    const scrypt = jest.spyOn(crypto, 'scrypt');
    try {
      const expensive = `$scrypt$ln=30,r=8,p=1$${salt}$${key}`;

      await expect(verifyPassword(PASSPHRASE, expensive)).resolves.toMatchObject({ ok: false });
      const asked = scrypt.mock.calls.map((call) => (call[3] as crypto.ScryptOptions).N);
      expect(asked).toEqual([2 ** SCRYPT.ln]);
    } finally {
      scrypt.mockRestore();
    }
  });

  it('asks for a rehash of a right password stored with weaker parameters', async () => {
    const weaker = storedWith('older phrase, weaker cost', 14);

    await expect(verifyPassword('older phrase, weaker cost', weaker)).resolves.toEqual({
      ok: true,
      needsRehash: true,
    });
    await expect(verifyPassword('another phrase entirely', weaker)).resolves.toEqual({
      ok: false,
      needsRehash: false,
    });
  });

  it('reads the parameters from the stored string, padded base64 or not', async () => {
    const unpadded = storedWith('older phrase, weaker cost', 12, 4, 1, false);

    await expect(verifyPassword('older phrase, weaker cost', unpadded)).resolves.toEqual({
      ok: true,
      needsRehash: true,
    });
  });
});

describe('dummyVerify', () => {
  it('runs scrypt with the same parameters and key length as a real verification', async () => {
    const stored = await hashPassword(PASSPHRASE);
    const scrypt = jest.spyOn(crypto, 'scrypt');
    try {
      await verifyPassword(PASSPHRASE, stored);
      await dummyVerify();

      const [real, dummy] = scrypt.mock.calls.map(([, , keyLength, options]) => ({
        keyLength,
        options,
      }));
      expect(scrypt).toHaveBeenCalledTimes(2);
      expect(dummy).toEqual(real);
    } finally {
      scrypt.mockRestore();
    }
  });
});

describe('hashing under a flood', () => {
  it('runs a few hashes at a time, queues a few more, and turns the rest away at once', async () => {
    const capacity = HASH_CONCURRENCY + HASH_QUEUE_LIMIT;
    const outcomes = await Promise.allSettled(
      Array.from({ length: capacity + 5 }, () => dummyVerify()),
    );

    const busy = outcomes.filter(
      (outcome) => outcome.status === 'rejected' && outcome.reason instanceof PasswordHashingBusy,
    );
    expect(busy).toHaveLength(5);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(capacity);
    // The slots are all given back: the next hash runs.
    await expect(verifyPassword('x', await hashPassword('y'))).resolves.toMatchObject({
      ok: false,
    });
  });
});
