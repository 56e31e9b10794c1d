import { generateSecret, generateSync, generateURI, verifySync } from 'otplib';
import QRCode from 'qrcode';

/**
 * Time-based one-time passwords (RFC 6238): 30-second steps, 6 digits, SHA-1 as authenticator
 * apps expect. One step of clock drift either way is accepted (RFC 6238 section 5.2 suggests at
 * most one), and a code whose step is not newer than the last one used is refused, so a code
 * seen over someone's shoulder cannot be used again within its window.
 */
export const TOTP_PERIOD_SECONDS = 30;
const DRIFT_SECONDS = TOTP_PERIOD_SECONDS;

/** 160 random bits, base32: the length RFC 4226 recommends for the shared secret. */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export function otpauthUri(secret: string, account: string, issuer = 'Vigil'): string {
  return generateURI({ secret, label: account, issuer });
}

export function qrDataUrl(uri: string): Promise<string> {
  return QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, width: 220 });
}

export function qrTerminal(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'terminal', small: true });
}

export function totpAt(secret: string, now: Date): string {
  return generateSync({ secret, epoch: Math.floor(now.getTime() / 1000) });
}

export function verifyTotp(
  secret: string,
  code: string,
  now: Date,
  lastUsedStep?: number,
): { ok: true; step: number } | { ok: false; reason: 'invalid' | 'replayed' } {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return { ok: false, reason: 'invalid' };
  const epoch = Math.floor(now.getTime() / 1000);
  const result = verifySync({ secret, token, epoch, epochTolerance: DRIFT_SECONDS });
  if (!result.valid) return { ok: false, reason: 'invalid' };
  // delta is how many steps from now the code matched (-1, 0 or +1).
  const step = Math.floor(epoch / TOTP_PERIOD_SECONDS) + result.delta;
  if (lastUsedStep !== undefined && step <= lastUsedStep) return { ok: false, reason: 'replayed' };
  return { ok: true, step };
}
