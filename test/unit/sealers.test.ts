import { randomBytes } from 'node:crypto';
import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { KmsSealer, LocalSealer, SealedValueError } from '../../functions/platform/keys/sealers';

const SEED = 'JBSWY3DPEHPK3PXP';
const context = { purpose: 'totp-secret', userId: 'u-okafor' };

describe('LocalSealer', () => {
  const sealer = new LocalSealer(randomBytes(32));

  it('opens what it sealed, with the same context in any key order', async () => {
    const sealed = await sealer.seal(SEED, context);

    expect(await sealer.open(sealed, { userId: 'u-okafor', purpose: 'totp-secret' })).toBe(SEED);
  });

  it('stores no trace of the plaintext and never seals twice alike', async () => {
    const [a, b] = [await sealer.seal(SEED, context), await sealer.seal(SEED, context)];

    expect(a).toMatch(/^local:[\w-]+$/);
    expect(a).not.toContain(SEED);
    expect(a).not.toBe(b);
  });

  it('refuses a value sealed for another account', async () => {
    const sealed = await sealer.seal(SEED, context);

    await expect(sealer.open(sealed, { ...context, userId: 'u-mallory' })).rejects.toThrow(
      SealedValueError,
    );
  });

  it('refuses a context whose values differ only in case', async () => {
    const sealed = await sealer.seal(SEED, context);

    await expect(sealer.open(sealed, { ...context, userId: 'U-OKAFOR' })).rejects.toThrow(
      SealedValueError,
    );
  });

  it('refuses a value with one bit changed', async () => {
    const sealed = await sealer.seal(SEED, context);
    const raw = Buffer.from(sealed.slice('local:'.length), 'base64url');
    raw[14] = (raw[14] as number) ^ 0x01;

    await expect(sealer.open(`local:${raw.toString('base64url')}`, context)).rejects.toThrow(
      SealedValueError,
    );
  });

  it('refuses a value sealed under another key, a plaintext seed and a truncated value', async () => {
    const other = await new LocalSealer(randomBytes(32)).seal(SEED, context);

    for (const value of [other, SEED, 'local:AAAA']) {
      await expect(sealer.open(value, context)).rejects.toThrow(SealedValueError);
    }
  });

  it('takes only a 256-bit key', () => {
    expect(() => new LocalSealer(randomBytes(16))).toThrow('32 bytes');
  });
});

/**
 * A KMS double that holds to the encryption context as KMS does: the blob opens only with
 * the context it was made with, in any key order, values compared exactly.
 */
function contextEnforcingKms(kms: ReturnType<typeof mockClient>) {
  const made = new Map<string, Record<string, string>>();
  const same = (a: Record<string, string>, b: Record<string, string>) =>
    Object.keys(a).length === Object.keys(b).length &&
    Object.entries(a).every(([key, value]) => b[key] === value);
  kms
    .on(EncryptCommand)
    .callsFake((input: { Plaintext: Uint8Array; EncryptionContext: Record<string, string> }) => {
      const blob = Buffer.concat([randomBytes(8), Buffer.from(input.Plaintext)]);
      made.set(blob.toString('base64'), input.EncryptionContext);
      return { CiphertextBlob: blob };
    });
  kms
    .on(DecryptCommand)
    .callsFake(
      (input: { CiphertextBlob: Uint8Array; EncryptionContext: Record<string, string> }) => {
        const blob = Buffer.from(input.CiphertextBlob);
        const context = made.get(blob.toString('base64'));
        if (!context || !same(context, input.EncryptionContext ?? {})) {
          throw Object.assign(new Error('InvalidCiphertextException'), {
            name: 'InvalidCiphertextException',
          });
        }
        return { Plaintext: blob.subarray(8) };
      },
    );
}

/** One stub of the KMS client for every test here: a second would replace the first. */
const kms = mockClient(KMSClient);

describe('KmsSealer against a KMS that enforces the encryption context', () => {
  beforeEach(() => contextEnforcingKms(kms));
  afterEach(() => kms.reset());
  const sealer = () => new KmsSealer(new KMSClient({}), 'alias/vigil-data');
  const record = { purpose: 'totp-secret', userId: 'r-1' };

  it('opens with the same context, in any key order', async () => {
    const sealed = await sealer().seal(SEED, record);

    expect(await sealer().open(sealed, { userId: 'r-1', purpose: 'totp-secret' })).toBe(SEED);
  });

  it('does not open a value copied onto another account, or a context differing in case', async () => {
    const sealed = await sealer().seal(SEED, record);

    await expect(sealer().open(sealed, { ...record, userId: 'r-2' })).rejects.toThrow(
      SealedValueError,
    );
    await expect(sealer().open(sealed, { ...record, userId: 'R-1' })).rejects.toThrow(
      SealedValueError,
    );
  });
});

describe('KmsSealer', () => {
  afterEach(() => kms.reset());

  it('encrypts under the data key with the context as encryption context', async () => {
    kms.on(EncryptCommand).resolves({ CiphertextBlob: Buffer.from('blob') });

    const sealed = await new KmsSealer(new KMSClient({}), 'alias/vigil-data').seal(SEED, context);

    expect(sealed).toBe(`kms:${Buffer.from('blob').toString('base64')}`);
    const input = kms.commandCalls(EncryptCommand)[0]?.args[0].input;
    expect(input).toMatchObject({ KeyId: 'alias/vigil-data', EncryptionContext: context });
    expect(Buffer.from(input?.Plaintext ?? []).toString()).toBe(SEED);
  });

  it('decrypts with the same key and context', async () => {
    kms.on(DecryptCommand).resolves({ Plaintext: Buffer.from(SEED) });

    const opened = await new KmsSealer(new KMSClient({}), 'alias/vigil-data').open(
      `kms:${Buffer.from('blob').toString('base64')}`,
      context,
    );

    expect(opened).toBe(SEED);
    expect(kms.commandCalls(DecryptCommand)[0]?.args[0].input).toMatchObject({
      KeyId: 'alias/vigil-data',
      EncryptionContext: context,
    });
  });

  it('reports a wrong context as an unopenable value, and an outage as it is', async () => {
    const sealer = new KmsSealer(new KMSClient({}), 'alias/vigil-data');
    const wrong = Object.assign(new Error('bad'), { name: 'InvalidCiphertextException' });
    kms.on(DecryptCommand).rejectsOnce(wrong).rejectsOnce(new Error('throttled'));

    await expect(sealer.open('kms:YmxvYg==', context)).rejects.toThrow(SealedValueError);
    await expect(sealer.open('kms:YmxvYg==', context)).rejects.toThrow('throttled');
    await expect(sealer.open('local:YmxvYg', context)).rejects.toThrow(SealedValueError);
  });
});
