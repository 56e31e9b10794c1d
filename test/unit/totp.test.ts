import {
  TOTP_PERIOD_SECONDS,
  newTotpSecret,
  otpauthUri,
  qrDataUrl,
  qrTerminal,
  totpAt,
  verifyTotp,
} from '../../functions/identity/totp';

/** RFC 6238 Appendix B: the ASCII seed "12345678901234567890" (SHA-1), in base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const T0 = new Date('2026-12-01T15:00:10Z');
const STEP_MS = TOTP_PERIOD_SECONDS * 1000;
const stepOf = (date: Date) => Math.floor(date.getTime() / STEP_MS);
const stepsFromT0 = (n: number) => new Date(T0.getTime() + n * STEP_MS);

describe('totpAt', () => {
  // The 8-digit values of RFC 6238 Appendix B, cut to their last 6 digits (RFC 4226 5.3).
  it.each([
    ['1970-01-01T00:00:59Z', '287082'],
    ['2005-03-18T01:58:29Z', '081804'],
    ['2009-02-13T23:31:30Z', '005924'],
    ['2033-05-18T03:33:20Z', '279037'],
  ])('gives the RFC 6238 test vector at %s', (time, code) => {
    expect(totpAt(RFC_SECRET, new Date(time))).toBe(code);
  });

  it('changes at the step boundary and not within a step', () => {
    const start = new Date(stepOf(T0) * STEP_MS);
    const lastMs = new Date(start.getTime() + STEP_MS - 1);
    const next = new Date(start.getTime() + STEP_MS);

    expect(totpAt(RFC_SECRET, lastMs)).toBe(totpAt(RFC_SECRET, start));
    expect(totpAt(RFC_SECRET, next)).not.toBe(totpAt(RFC_SECRET, start));
  });
});

describe('verifyTotp', () => {
  const secret = newTotpSecret();

  it('accepts the code of the current step and names that step', () => {
    expect(verifyTotp(secret, totpAt(secret, T0), T0)).toEqual({ ok: true, step: stepOf(T0) });
  });

  it('accepts one step of drift either way, naming the step the code belongs to', () => {
    expect(verifyTotp(secret, totpAt(secret, stepsFromT0(-1)), T0)).toEqual({
      ok: true,
      step: stepOf(T0) - 1,
    });
    expect(verifyTotp(secret, totpAt(secret, stepsFromT0(1)), T0)).toEqual({
      ok: true,
      step: stepOf(T0) + 1,
    });
  });

  it('refuses codes two steps away', () => {
    for (const steps of [-2, 2]) {
      const code = totpAt(secret, stepsFromT0(steps));

      expect(verifyTotp(secret, code, T0)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('refuses a code of another secret', () => {
    expect(verifyTotp(secret, totpAt(RFC_SECRET, T0), T0)).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('refuses the same code again within its window as replayed', () => {
    const code = totpAt(secret, T0);
    const first = verifyTotp(secret, code, T0);
    const used = first.ok ? first.step : Number.NaN;

    const again = verifyTotp(secret, code, new Date(T0.getTime() + 15_000), used);

    expect(first.ok).toBe(true);
    expect(again).toEqual({ ok: false, reason: 'replayed' });
  });

  it('refuses a code of an earlier step once a later one was used', () => {
    const later = verifyTotp(secret, totpAt(secret, stepsFromT0(1)), T0);
    const used = later.ok ? later.step : Number.NaN;

    const earlier = verifyTotp(secret, totpAt(secret, T0), T0, used);

    expect(later).toEqual({ ok: true, step: stepOf(T0) + 1 });
    expect(earlier).toEqual({ ok: false, reason: 'replayed' });
  });

  it('accepts the next step after the last one used', () => {
    const next = verifyTotp(secret, totpAt(secret, T0), T0, stepOf(T0) - 1);

    expect(next).toEqual({ ok: true, step: stepOf(T0) });
  });

  it('calls a wrong code invalid, not replayed, whatever the last step used', () => {
    const wrong = totpAt(secret, stepsFromT0(5));

    expect(verifyTotp(secret, wrong, T0, stepOf(T0) + 1)).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('takes the time from its argument, never from the system clock', () => {
    jest.useFakeTimers({ now: new Date('2031-06-01T00:00:00Z') });
    try {
      expect(verifyTotp(secret, totpAt(secret, T0), T0)).toEqual({ ok: true, step: stepOf(T0) });
    } finally {
      jest.useRealTimers();
    }
  });

  it('accepts the code with spaces, as apps display it', () => {
    const code = totpAt(secret, T0);

    expect(verifyTotp(secret, ` ${code.slice(0, 3)} ${code.slice(3)} `, T0)).toMatchObject({
      ok: true,
    });
  });

  it.each(['', '12345', '1234567', 'abcdef', '12345a', '１２３４５６'])(
    'refuses %p, which is not six digits',
    (code) => {
      expect(verifyTotp(secret, code, T0)).toEqual({ ok: false, reason: 'invalid' });
    },
  );

  it('throws on a date that is not a date', () => {
    expect(() => verifyTotp(secret, '123456', new Date('not a date'))).toThrow(RangeError);
  });
});

describe('newTotpSecret', () => {
  it('makes distinct 160-bit secrets in base32', () => {
    const [a, b] = [newTotpSecret(), newTotpSecret()];

    expect(a).toMatch(/^[A-Z2-7]{32}$/); // 32 base32 symbols * 5 bits = 160 bits
    expect(b).toMatch(/^[A-Z2-7]{32}$/);
    expect(a).not.toBe(b);
  });
});

describe('otpauthUri', () => {
  it('names the issuer, the account and the secret', () => {
    const uri = new URL(otpauthUri(RFC_SECRET, 'alan.turing@hospital.example'));

    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Vigil:alan.turing@hospital.example');
    expect(uri.searchParams.get('secret')).toBe(RFC_SECRET);
    expect(uri.searchParams.get('issuer')).toBe('Vigil');
  });

  it('takes another issuer', () => {
    const uri = new URL(otpauthUri(RFC_SECRET, 'a.b@hospital.example', 'Vigil Staging'));

    expect(decodeURIComponent(uri.pathname)).toBe('/Vigil Staging:a.b@hospital.example');
    expect(uri.searchParams.get('issuer')).toBe('Vigil Staging');
  });

  it('refuses a colon in the account or issuer, which would split the label', () => {
    expect(() => otpauthUri(RFC_SECRET, 'evil:alan@hospital.example')).toThrow(RangeError);
    expect(() => otpauthUri(RFC_SECRET, 'alan@hospital.example', 'A:B')).toThrow(RangeError);
  });
});

describe('QR codes', () => {
  const uri = otpauthUri(RFC_SECRET, 'alan.turing@hospital.example');

  it('gives a PNG data URL for the console', async () => {
    const url = await qrDataUrl(uri);

    expect(url).toMatch(/^data:image\/png;base64,/);
    const png = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10]));
  });

  it('draws the code in block characters for the terminal', async () => {
    const drawing = await qrTerminal(uri);

    expect(drawing.split('\n').length).toBeGreaterThan(20);
    expect(drawing).toMatch(/[█▀▄]/);
    expect(drawing).not.toContain(RFC_SECRET);
  });
});
