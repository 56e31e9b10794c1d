import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { Sealer } from '../ports';

/** A sealed value that cannot be opened: tampered, under another key, or another context. */
export class SealedValueError extends Error {
  constructor() {
    super('a sealed value could not be opened');
    this.name = 'SealedValueError';
  }
}

const KMS_PREFIX = 'kms:';
const LOCAL_PREFIX = 'local:';

/**
 * KMS Encrypt and Decrypt under the data key; the context is KMS's encryption context, which
 * CloudTrail records with each use and key policies can require.
 */
export class KmsSealer implements Sealer {
  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
  ) {}

  async seal(plaintext: string, context: Record<string, string>): Promise<string> {
    const out = await this.client.send(
      new EncryptCommand({
        KeyId: this.keyId,
        Plaintext: Buffer.from(plaintext, 'utf8'),
        EncryptionContext: context,
      }),
    );
    if (!out.CiphertextBlob) throw new Error('KMS Encrypt returned no ciphertext');
    return KMS_PREFIX + Buffer.from(out.CiphertextBlob).toString('base64');
  }

  async open(sealed: string, context: Record<string, string>): Promise<string> {
    if (!sealed.startsWith(KMS_PREFIX)) throw new SealedValueError();
    let out;
    try {
      out = await this.client.send(
        new DecryptCommand({
          KeyId: this.keyId,
          CiphertextBlob: Buffer.from(sealed.slice(KMS_PREFIX.length), 'base64'),
          EncryptionContext: context,
        }),
      );
    } catch (error) {
      // A wrong context or a damaged blob; throttling and outages are passed on as they are.
      if ((error as { name?: string }).name === 'InvalidCiphertextException') {
        throw new SealedValueError();
      }
      throw error;
    }
    if (!out.Plaintext) throw new SealedValueError();
    return Buffer.from(out.Plaintext).toString('utf8');
  }
}

/**
 * AES-256-GCM under the local data key: a random 96-bit nonce per value, the context as
 * additional authenticated data. Stored as `local:` and base64url of nonce, ciphertext, tag.
 */
export class LocalSealer implements Sealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the local data key must be 32 bytes');
  }

  async seal(plaintext: string, context: Record<string, string>): Promise<string> {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(contextBytes(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return LOCAL_PREFIX + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
  }

  async open(sealed: string, context: Record<string, string>): Promise<string> {
    if (!sealed.startsWith(LOCAL_PREFIX)) throw new SealedValueError();
    const raw = Buffer.from(sealed.slice(LOCAL_PREFIX.length), 'base64url');
    if (raw.length < 12 + 16) throw new SealedValueError();
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      decipher.setAAD(contextBytes(context));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const body = decipher.update(raw.subarray(12, raw.length - 16));
      return Buffer.concat([body, decipher.final()]).toString('utf8');
    } catch {
      throw new SealedValueError();
    }
  }
}

/** The context in one order, whatever order its keys were written in. */
function contextBytes(context: Record<string, string>): Buffer {
  const sorted = Object.keys(context)
    .sort()
    .map((key) => [key, context[key]]);
  return Buffer.from(JSON.stringify(sorted), 'utf8');
}
