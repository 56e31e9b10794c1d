import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
} from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import {
  KmsSigner,
  LocalSigner,
  MAX_RAW_MESSAGE_BYTES,
  SigningKeyError,
  generateSigningKeyPair,
  verifySignature,
} from '../../functions/platform/keys/kms';

const message = Buffer.from('checkpoint 42: 9f86d081884c7d659a2feaa0c55ad015');
const pair = generateSigningKeyPair();
const other = generateSigningKeyPair();

function localSigner(keys = pair): LocalSigner {
  return new LocalSigner({ keyId: 'local:test', ...keys });
}

describe('LocalSigner and verifySignature', () => {
  it('produces a signature that verifies with its public key', async () => {
    const signer = localSigner();

    const signature = await signer.sign(message);

    expect(verifySignature(await signer.publicKeyPem(), message, signature)).toBe(true);
  });

  it('fails verification when one bit of the signature is flipped', async () => {
    const signature = await localSigner().sign(message);
    const flipped = Buffer.from(signature);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 1) ^ 0x01, flipped.length - 1);

    expect(verifySignature(pair.publicKeyPem, message, flipped)).toBe(false);
  });

  it('fails verification when one bit of the message is flipped', async () => {
    const signature = await localSigner().sign(message);
    const altered = Buffer.from(message);
    altered.writeUInt8(altered.readUInt8(0) ^ 0x01, 0);

    expect(verifySignature(pair.publicKeyPem, altered, signature)).toBe(false);
  });

  it('fails verification of a signature made by another key', async () => {
    const signature = await localSigner(other).sign(message);

    expect(verifySignature(pair.publicKeyPem, message, signature)).toBe(false);
  });

  it('returns false for signatures that are not DER at all', () => {
    for (const garbage of [
      Buffer.alloc(0),
      Buffer.from('not a signature'),
      Buffer.alloc(72, 0xff),
    ]) {
      expect(verifySignature(pair.publicKeyPem, message, garbage)).toBe(false);
    }
  });

  it('throws on a public key that cannot be read, since that is a configuration fault', () => {
    expect(() => verifySignature('not a key', message, Buffer.alloc(8))).toThrow();
  });

  it('writes DER signatures, not the 64-byte raw r||s form', async () => {
    const signature = await localSigner().sign(message);

    expect(signature.readUInt8(0)).toBe(0x30);
    expect(signature.readUInt8(1)).toBe(signature.length - 2);
  });

  it('refuses a public key that belongs to another pair', () => {
    const mismatched = { privateKeyPem: pair.privateKeyPem, publicKeyPem: other.publicKeyPem };

    expect(() => localSigner(mismatched)).toThrow(SigningKeyError);
  });

  it('refuses a key on a curve other than P-256', () => {
    const p384 = generateKeyPairSync('ec', {
      namedCurve: 'secp384r1',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });

    const keys = { privateKeyPem: p384.privateKey, publicKeyPem: p384.publicKey };
    expect(() => localSigner(keys)).toThrow(SigningKeyError);
  });
});

describe('KmsSigner', () => {
  const client = new KMSClient({ region: 'us-east-1' });
  const kms = mockClient(client);
  const keyId = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const kmsKey = createPrivateKey(pair.privateKeyPem);
  const spkiDer = createPublicKey(pair.publicKeyPem).export({ type: 'spki', format: 'der' });

  /** Stands in for KMS: signs what it is sent with a P-256 key, as ECDSA_SHA_256 would. */
  function kmsSignsWith(original: Buffer): void {
    kms.on(SignCommand).callsFake((input: { Message?: Uint8Array; MessageType?: string }) => {
      const toSign = input.MessageType === 'DIGEST' ? original : Buffer.from(input.Message ?? []);
      return { Signature: sign('sha256', toSign, { key: kmsKey, dsaEncoding: 'der' }) };
    });
    kms.on(GetPublicKeyCommand).resolves({ KeyId: keyId, PublicKey: spkiDer });
  }

  afterEach(() => kms.reset());
  afterAll(() => kms.restore());

  it('asks KMS for an ECDSA_SHA_256 signature over the raw message', async () => {
    kmsSignsWith(message);

    await new KmsSigner({ client, keyId }).sign(message);

    const inputs = kms.commandCalls(SignCommand).map((call) => call.args[0].input);
    expect(inputs).toEqual([
      { KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' },
    ]);
  });

  it('returns a DER signature that verifies against its own public key PEM', async () => {
    kmsSignsWith(message);
    const signer = new KmsSigner({ client, keyId });

    const signature = await signer.sign(message);
    const pem = await signer.publicKeyPem();

    expect(Buffer.isBuffer(signature)).toBe(true);
    expect(pem).toBe(pair.publicKeyPem);
    expect(verifySignature(pem, message, signature)).toBe(true);
  });

  it('sends the SHA-256 digest of messages above the RAW limit, still verifiable', async () => {
    const long = Buffer.alloc(MAX_RAW_MESSAGE_BYTES + 1, 'a');
    kmsSignsWith(long);
    const signer = new KmsSigner({ client, keyId });

    const signature = await signer.sign(long);

    const input = kms.commandCalls(SignCommand)[0]?.args[0].input;
    expect(input?.MessageType).toBe('DIGEST');
    expect(input?.Message).toEqual(createHash('sha256').update(long).digest());
    expect(verifySignature(pair.publicKeyPem, long, signature)).toBe(true);
  });

  it('fetches the public key once and reuses it', async () => {
    kmsSignsWith(message);
    const signer = new KmsSigner({ client, keyId });

    await Promise.all([signer.publicKeyPem(), signer.publicKeyPem()]);
    await signer.publicKeyPem();

    expect(kms.commandCalls(GetPublicKeyCommand).map((c) => c.args[0].input)).toEqual([
      { KeyId: keyId },
    ]);
  });

  it('fetches again after a failed fetch instead of caching the failure', async () => {
    kms
      .on(GetPublicKeyCommand)
      .rejectsOnce(new Error('throttled'))
      .resolves({ KeyId: keyId, PublicKey: spkiDer });
    const signer = new KmsSigner({ client, keyId });

    await expect(signer.publicKeyPem()).rejects.toThrow('throttled');
    await expect(signer.publicKeyPem()).resolves.toBe(pair.publicKeyPem);
  });

  it('refuses a KMS key that is not on P-256', async () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    kms.on(GetPublicKeyCommand).resolves({
      KeyId: keyId,
      PublicKey: p384.publicKey.export({ type: 'spki', format: 'der' }),
    });

    await expect(new KmsSigner({ client, keyId }).publicKeyPem()).rejects.toThrow(SigningKeyError);
  });
});
