import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as signWithKey,
  verify as verifyWithKey,
  type KeyObject,
} from 'node:crypto';
import { GetPublicKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { Signer } from '../ports';

/** KMS Sign takes a RAW message of at most 4096 bytes; longer ones must be sent as a digest. */
export const MAX_RAW_MESSAGE_BYTES = 4096;
const SIGNING_ALGORITHM = 'ECDSA_SHA_256';
/** OpenSSL's name for NIST P-256, the curve of KMS key spec ECC_NIST_P256. */
const P256 = 'prime256v1';

/** A key that is not ECDSA P-256, or a key pair whose halves do not belong together. */
export class SigningKeyError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'SigningKeyError';
  }
}

export interface KmsSignerOptions {
  client: KMSClient;
  /** Key id, ARN or alias of an ECC_NIST_P256 SIGN_VERIFY key. */
  keyId: string;
}

export class KmsSigner implements Signer {
  readonly keyId: string;
  private readonly client: KMSClient;
  private publicKey: Promise<string> | undefined;

  constructor(options: KmsSignerOptions) {
    this.client = options.client;
    this.keyId = options.keyId;
  }

  async sign(message: Buffer): Promise<Buffer> {
    // For ECDSA_SHA_256 a signature over the SHA-256 digest is the signature over the message,
    // so long messages are hashed here and verify exactly like short ones.
    const raw = message.length <= MAX_RAW_MESSAGE_BYTES;
    const command = new SignCommand({
      KeyId: this.keyId,
      Message: raw ? message : createHash('sha256').update(message).digest(),
      MessageType: raw ? 'RAW' : 'DIGEST',
      SigningAlgorithm: SIGNING_ALGORITHM,
    });

    const result = await this.client.send(command);
    if (!result.Signature) throw new Error('KMS Sign returned no signature');
    return Buffer.from(result.Signature);
  }

  /** Fetched once per instance; a failed fetch is forgotten so the next call tries again. */
  publicKeyPem(): Promise<string> {
    if (!this.publicKey) {
      this.publicKey = this.fetchPublicKeyPem();
      this.publicKey.catch(() => {
        this.publicKey = undefined;
      });
    }
    return this.publicKey;
  }

  private async fetchPublicKeyPem(): Promise<string> {
    const result = await this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId }));
    if (!result.PublicKey) throw new Error('KMS GetPublicKey returned no key');

    const key = createPublicKey({
      key: Buffer.from(result.PublicKey),
      format: 'der',
      type: 'spki',
    });
    requireP256(key);
    return spkiPem(key);
  }
}

export interface LocalSignerOptions {
  keyId: string;
  /** PKCS#8 or SEC1 PEM of a P-256 private key. */
  privateKeyPem: string;
  publicKeyPem: string;
}

/** The same contract as KmsSigner with a key held in this process, for local runs and tests. */
export class LocalSigner implements Signer {
  readonly keyId: string;
  private readonly privateKey: KeyObject;
  private readonly publicPem: string;

  constructor(options: LocalSignerOptions) {
    this.keyId = options.keyId;
    this.privateKey = createPrivateKey(options.privateKeyPem);
    requireP256(this.privateKey);

    // A public key from another pair would make every signature fail verification later,
    // far from the cause; refuse it here instead.
    const derived = spkiPem(createPublicKey(this.privateKey));
    if (derived !== spkiPem(createPublicKey(options.publicKeyPem))) {
      throw new SigningKeyError('public key does not belong to the private key');
    }
    this.publicPem = derived;
  }

  async sign(message: Buffer): Promise<Buffer> {
    return signWithKey('sha256', message, { key: this.privateKey, dsaEncoding: 'der' });
  }

  async publicKeyPem(): Promise<string> {
    return this.publicPem;
  }
}

export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const pair = generateKeyPairSync('ec', {
    namedCurve: P256,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey };
}

/**
 * Checks a DER ECDSA P-256/SHA-256 signature. A malformed signature is simply not valid, so
 * this returns false for it; an unreadable public key is a configuration fault and throws.
 */
export function verifySignature(publicKeyPem: string, message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey(publicKeyPem);
  try {
    return verifyWithKey('sha256', message, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

function requireP256(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== P256) {
    throw new SigningKeyError('signing key must be ECDSA on NIST P-256');
  }
}

function spkiPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}
