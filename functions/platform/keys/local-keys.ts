import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { LocalSigner, generateSigningKeyPair } from './kms';

/**
 * Local keys, generated on first start under `<dataDir>/keys` with mode 0600: an ECDSA P-256
 * key for signing checkpoints and a 256-bit data key. They never leave this directory.
 */
export function loadLocalSigner(keysDir: string): LocalSigner {
  fs.mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const privateFile = path.join(keysDir, 'signing-key.pem');
  const publicFile = path.join(keysDir, 'signing-key.pub.pem');

  if (!fs.existsSync(privateFile)) {
    const pair = generateSigningKeyPair();
    // 'wx' fails if another process created the key first; that key then wins.
    try {
      fs.writeFileSync(privateFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      fs.writeFileSync(publicFile, pair.publicKeyPem, { mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const privateKeyPem = fs.readFileSync(privateFile, 'utf8');
  const publicKeyPem = waitForFile(publicFile);
  const keyId = `local:${createHash('sha256').update(publicKeyPem).digest('hex').slice(0, 16)}`;
  return new LocalSigner({ keyId, privateKeyPem, publicKeyPem });
}

/** The data key for envelope encryption of PHI fields; created once, 32 random bytes. */
export function loadLocalDataKey(keysDir: string): Buffer {
  fs.mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const file = path.join(keysDir, 'data-key.bin');
  try {
    fs.writeFileSync(file, randomBytes(32), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return fs.readFileSync(file);
}

function waitForFile(file: string): string {
  for (let i = 0; i < 50; i += 1) {
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file, 'utf8');
      if (text.includes('END PUBLIC KEY')) return text;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  throw new Error('signing public key is missing from the keys directory');
}
