import {
  PASSWORD_MIN_LENGTH,
  checkPassword,
  hashPassword,
  verifyPassword,
} from '../../functions/identity/passwords';
import { matchRecoveryCode, newRecoveryCodes } from '../../functions/identity/recovery';
import {
  newTotpSecret,
  otpauthUri,
  qrDataUrl,
  totpAt,
  verifyTotp,
} from '../../functions/identity/totp';

const person = { name: 'Alan Turing', email: 'alan.turing@hospital.example' };
const T0 = new Date('2026-12-01T15:00:10Z');
const step = (n: number) => new Date(T0.getTime() + n * 30_000);

describe('password rules', () => {
  it('refuses a password shorter than twelve characters', () => {
    expect(checkPassword('Tr0ub4dor&3', person)).toEqual({
      ok: false,
      reason: expect.stringContaining(`${PASSWORD_MIN_LENGTH}`),
    });
  });

  it('refuses a password from the shipped list of common passwords', () => {
    const verdict = checkPassword('password1234', person);
    expect(verdict.ok).toBe(false);
  });

  it('refuses a guessable variation of a common password', () => {
    expect(checkPassword('Password1234', person).ok).toBe(false);
  });

  it("refuses a password built from the person's own name or email", () => {
    expect(checkPassword('alan turing rules!', person)).toEqual({
      ok: false,
      reason: expect.stringContaining('name'),
    });
    expect(checkPassword('my-hospital-turing-2026', person).ok).toBe(false);
  });

  it('accepts a long phrase of unrelated words', () => {
    expect(checkPassword('correct horse battery staple 42', person)).toEqual({ ok: true });
  });

  it('never repeats the password in its reason', () => {
    const verdict = checkPassword('qwertyuiop12', person);
    expect(verdict.ok).toBe(false);
    expect(JSON.stringify(verdict)).not.toContain('qwertyuiop12');
  });
});

describe('password hashing', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const stored = await hashPassword('correct horse battery staple 42');
    expect(stored).toMatch(/^\$scrypt\$ln=17,r=8,p=1\$/);
    await expect(verifyPassword('correct horse battery staple 42', stored)).resolves.toEqual({
      ok: true,
      needsRehash: false,
    });
    await expect(verifyPassword('correct horse battery staple 43', stored)).resolves.toMatchObject({
      ok: false,
    });
  });

  it('salts each hash', async () => {
    expect(await hashPassword('same phrase, twice over')).not.toBe(
      await hashPassword('same phrase, twice over'),
    );
  });

  it('refuses a tampered hash', async () => {
    const stored = await hashPassword('correct horse battery staple 42');
    const tampered = stored.slice(0, -4) + (stored.endsWith('AAA=') ? 'BBB=' : 'AAA=');
    await expect(
      verifyPassword('correct horse battery staple 42', tampered),
    ).resolves.toMatchObject({ ok: false });
    await expect(verifyPassword('x', 'not a hash')).resolves.toEqual({
      ok: false,
      needsRehash: false,
    });
  });

  it('asks for a rehash when the stored parameters are weaker than the current ones', async () => {
    const crypto = await import('node:crypto');
    const salt = crypto.randomBytes(16);
    const key = crypto.scryptSync('older phrase, weaker cost', salt, 32, {
      N: 2 ** 14,
      r: 8,
      p: 1,
    });
    const old = `$scrypt$ln=14,r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
    await expect(verifyPassword('older phrase, weaker cost', old)).resolves.toEqual({
      ok: true,
      needsRehash: true,
    });
  });
});

describe('TOTP', () => {
  const secret = newTotpSecret();

  it('accepts the code of the current step and one step of drift either way', () => {
    expect(verifyTotp(secret, totpAt(secret, T0), T0)).toMatchObject({ ok: true });
    expect(verifyTotp(secret, totpAt(secret, step(-1)), T0)).toMatchObject({ ok: true });
    expect(verifyTotp(secret, totpAt(secret, step(1)), T0)).toMatchObject({ ok: true });
  });

  it('refuses codes two steps away', () => {
    expect(verifyTotp(secret, totpAt(secret, step(-2)), T0)).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(verifyTotp(secret, totpAt(secret, step(2)), T0)).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('refuses the same code again within its window', () => {
    const first = verifyTotp(secret, totpAt(secret, T0), T0);
    expect(first.ok).toBe(true);
    const used = first.ok ? first.step : -1;
    expect(verifyTotp(secret, totpAt(secret, T0), step(0.5), used)).toEqual({
      ok: false,
      reason: 'replayed',
    });
  });

  it('refuses a code from an earlier step once a later one was used', () => {
    const later = verifyTotp(secret, totpAt(secret, step(1)), step(1));
    const used = later.ok ? later.step : -1;
    expect(verifyTotp(secret, totpAt(secret, T0), step(1), used)).toEqual({
      ok: false,
      reason: 'replayed',
    });
  });

  it('refuses anything but six digits', () => {
    expect(verifyTotp(secret, '12345', T0)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyTotp(secret, 'abcdef', T0)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('gives an otpauth URI with issuer, account and secret, and a PNG QR code', async () => {
    const uri = otpauthUri(secret, 'alan.turing@hospital.example');
    expect(uri).toMatch(/^otpauth:\/\/totp\//);
    expect(uri).toContain(`secret=${secret}`);
    expect(uri).toContain('issuer=Vigil');
    expect(uri).toContain('alan.turing%40hospital.example');
    expect(await qrDataUrl(uri)).toMatch(/^data:image\/png;base64,/);
  });

  it('makes 160-bit base32 secrets', () => {
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  });
});

describe('recovery codes', () => {
  it('makes ten distinct codes, each matching its own hash once', () => {
    const { codes, hashes } = newRecoveryCodes();
    expect(new Set(codes).size).toBe(10);
    codes.forEach((code, index) => expect(matchRecoveryCode(code, hashes)).toBe(index));
  });

  it('matches whatever the case, spaces or dashes', () => {
    const { codes, hashes } = newRecoveryCodes(1);
    const code = codes[0] as string;
    expect(matchRecoveryCode(code.toUpperCase().replace(/-/g, ' '), hashes)).toBe(0);
    expect(matchRecoveryCode(code.replace(/-/g, ''), hashes)).toBe(0);
  });

  it('does not match an unknown code', () => {
    const { hashes } = newRecoveryCodes(3);
    expect(matchRecoveryCode('aaaa-bbbb-cccc', hashes)).toBe(-1);
  });

  it('stores no code in the clear', () => {
    const { codes, hashes } = newRecoveryCodes(3);
    for (const code of codes) expect(hashes.join()).not.toContain(code.replace(/-/g, ''));
  });
});
