import crypto from 'node:crypto';
import { matchRecoveryCode, newRecoveryCodes } from '../../functions/identity/recovery';

const CODE_FORMAT = /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/;
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

describe('newRecoveryCodes', () => {
  it('makes ten codes by default, in three groups of four unambiguous symbols', () => {
    const { codes, hashes } = newRecoveryCodes();

    expect(codes).toHaveLength(10);
    expect(hashes).toHaveLength(10);
    for (const code of codes) expect(code).toMatch(CODE_FORMAT);
  });

  it('makes as many as asked, all distinct', () => {
    const { codes } = newRecoveryCodes(200);

    expect(codes).toHaveLength(200);
    expect(new Set(codes).size).toBe(200);
  });

  it('uses every symbol of the alphabet, and puts a letter in every code', () => {
    const { codes } = newRecoveryCodes(200);
    const symbols = new Set(codes.join('').replace(/-/g, ''));

    // 2,400 symbols drawn: the chance that one of 32 never appears is about 10^-31.
    expect([...symbols].sort().join('')).toBe(ALPHABET);
    for (const code of codes) expect(code).toMatch(/[a-z]/);
  });

  it('stores salted SHA-256 hashes, never the codes', () => {
    const { codes, hashes } = newRecoveryCodes(5);

    for (const hash of hashes) expect(hash).toMatch(/^sha256\$[0-9a-f]{32}\$[0-9a-f]{64}$/);
    const stored = hashes.join('\n');
    for (const code of codes) expect(stored).not.toContain(code.replace(/-/g, ''));
    expect(new Set(hashes.map((hash) => hash.split('$')[1])).size).toBe(5);
  });
});

describe('matchRecoveryCode', () => {
  it('finds each code at its own index, and no other hash matches it', () => {
    const { codes, hashes } = newRecoveryCodes();

    codes.forEach((code, index) => {
      expect(matchRecoveryCode(code, hashes)).toBe(index);
      const others = hashes.filter((_, other) => other !== index);
      expect(matchRecoveryCode(code, others)).toBe(-1);
    });
  });

  it('matches whatever the case, spaces or dashes', () => {
    const { codes, hashes } = newRecoveryCodes(1);
    const code = codes[0] as string;
    const variants = [
      code.toUpperCase(),
      code.replace(/-/g, ''),
      code.replace(/-/g, ' '),
      ` ${code.toUpperCase().replace(/-/g, '  ')}\n`,
      code.replace(/-/g, '\u2013'), // en dash, as word processors write it
      code.slice(0, 2) + '-' + code.slice(2).replace(/-/g, ''),
    ];

    for (const variant of variants) expect(matchRecoveryCode(variant, hashes)).toBe(0);
  });

  it('reads the letters o, i and l as the digits they look like', () => {
    const stored = storedForm('ab01-c0d1-ef10');

    expect(matchRecoveryCode('ab01-c0d1-ef10', [stored])).toBe(0);
    expect(matchRecoveryCode('abOI-cOdl-efLo', [stored])).toBe(0);
    expect(matchRecoveryCode('abOI-cOdl-efLu', [stored])).toBe(-1);
  });

  it('gives -1 for an unknown code, an empty list or a malformed stored hash', () => {
    const { codes, hashes } = newRecoveryCodes(3);

    expect(matchRecoveryCode('aaaa-bbbb-cccc', hashes)).toBe(-1);
    expect(matchRecoveryCode(codes[0] as string, [])).toBe(-1);
    expect(matchRecoveryCode(codes[0] as string, ['not a hash', 'sha256$zz$zz'])).toBe(-1);
    expect(matchRecoveryCode('', hashes)).toBe(-1);
  });

  it('no longer matches once its hash is removed after use', () => {
    const { codes, hashes } = newRecoveryCodes(3);
    const used = matchRecoveryCode(codes[1] as string, hashes);
    const left = hashes.filter((_, index) => index !== used);

    expect(used).toBe(1);
    expect(matchRecoveryCode(codes[1] as string, left)).toBe(-1);
    expect(matchRecoveryCode(codes[2] as string, left)).toBe(1);
  });
});

/** The stored form of a chosen code, built independently of the module. */
function storedForm(code: string): string {
  const salt = crypto.randomBytes(16);
  const digest = crypto.createHash('sha256').update(salt).update(code.replace(/-/g, ''));
  return `sha256$${salt.toString('hex')}$${digest.digest('hex')}`;
}
