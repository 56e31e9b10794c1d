import crypto from 'node:crypto';
import { generateSecret, generateSync, generateURI } from 'otplib';
import QRCode from 'qrcode';

/**
 * Time-based one-time passwords (RFC 6238) with the parameters every authenticator app
 * understands. Time always comes from the caller, so a verification is a pure function of its
 * arguments and a test clock controls it completely.
 */

/** RFC 6238 section 5.2 recommends a 30-second time step. */
export const TOTP_PERIOD_SECONDS = 30;
/** RFC 4226 section 5.3 asks for at least 6 digits; apps show 6 by default. */
export const TOTP_DIGITS = 6;
/** RFC 4226 section 4 (R6) recommends a 160-bit shared secret. */
const TOTP_SECRET_BYTES = 20;
/**
 * Steps of clock drift accepted either way: RFC 6238 section 5.2 recommends allowing at most
 * one step of delay, and section 6 a fixed limit on how far an authenticator may drift.
 */
const TOTP_DRIFT_STEPS = 1;

/** SHA-1 is the HMAC the Key URI Format assumes and RFC 6238 keeps as the baseline. */
const PARAMS = { algorithm: 'sha1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS } as const;

export type TotpVerdict =
  { ok: true; step: number } | { ok: false; reason: 'invalid' | 'replayed' };

/** A new shared secret: 160 random bits, base32 (RFC 4648) as authenticator apps expect. */
export function newTotpSecret(): string {
  return generateSecret({ length: TOTP_SECRET_BYTES });
}

/**
 * The otpauth:// URI (Key URI Format) an authenticator app scans. A colon separates issuer
 * from account in the label, so neither may hold one.
 */
export function otpauthUri(secret: string, account: string, issuer = 'Vigil'): string {
  if (account.includes(':') || issuer.includes(':')) {
    throw new RangeError('the TOTP issuer and account name cannot contain a colon');
  }
  return generateURI({ secret, label: account, issuer, ...PARAMS });
}

/** A PNG data URL of the URI's QR code, for the console's enrolment page. */
export function qrDataUrl(uri: string): Promise<string> {
  return QRCode.toDataURL(uri, { type: 'image/png', errorCorrectionLevel: 'M', margin: 2 });
}

/** The URI's QR code drawn with block characters, for the command line. */
export function qrTerminal(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
}

/** RFC 6238 section 4.2: T = floor((Unix time - T0) / X), with T0 = 0. */
function stepAt(now: Date): number {
  const millis = now.getTime();
  if (!Number.isFinite(millis)) throw new RangeError('the time given is not a valid date');
  return Math.floor(millis / 1000 / TOTP_PERIOD_SECONDS);
}

function codeAtStep(secret: string, step: number): string {
  return generateSync({ secret, epoch: step * TOTP_PERIOD_SECONDS, ...PARAMS });
}

/** The code an authenticator shows at `now`, for tests and demos. */
export function totpAt(secret: string, now: Date): string {
  return codeAtStep(secret, stepAt(now));
}

/**
 * Checks `code` at `now`, accepting one step of drift either way. `step` is the time step the
 * code belongs to; the caller stores it and passes it back as `lastUsedStep`, and any code of
 * that step or an earlier one is then `replayed` (RFC 6238 section 5.2: a verifier must not
 * accept a second attempt of the same OTP). The window is searched here rather than by otplib's
 * verify, which reports a replay and a wrong code alike.
 */
export function verifyTotp(
  secret: string,
  code: string,
  now: Date,
  lastUsedStep?: number,
): TotpVerdict {
  const token = code.replace(/\s+/g, '');
  if (!new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(token)) return { ok: false, reason: 'invalid' };
  const current = stepAt(now);
  let fresh: number | undefined;
  let replayed = false;
  // Every step of the window is tried: a replayed step must not hide a fresh one that shares
  // its code, and the time taken does not depend on which step matched.
  for (let step = current - TOTP_DRIFT_STEPS; step <= current + TOTP_DRIFT_STEPS; step += 1) {
    if (!sameCode(codeAtStep(secret, step), token)) continue;
    if (lastUsedStep !== undefined && step <= lastUsedStep) replayed = true;
    else fresh ??= step;
  }
  if (fresh !== undefined) return { ok: true, step: fresh };
  return { ok: false, reason: replayed ? 'replayed' : 'invalid' };
}

function sameCode(expected: string, given: string): boolean {
  return crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(given));
}
