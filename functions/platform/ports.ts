/**
 * The ports the domain depends on. Domain code receives these as arguments and never
 * imports an AWS client; each port has an AWS adapter and an embedded local adapter.
 */

export type Item = Record<string, unknown>;
export type Key = Record<string, string>;

/** Thrown by conditional writes whose condition did not hold (a lost race, an existing key). */
export class ConditionFailedError extends Error {
  constructor() {
    super('conditional write did not apply');
    this.name = 'ConditionFailedError';
  }
}

export interface QueryInput {
  index?: string;
  /** Partition key attribute and value. */
  partition: [name: string, value: string];
  /** Optional sort key range, inclusive on both ends. */
  between?: [name: string, from: string, to: string];
  /** Sort key greater than (exclusive). */
  after?: [name: string, value: string];
  descending?: boolean;
  limit?: number;
  consistent?: boolean;
}

/** Key-value store with the single-item conditional semantics DynamoDB offers. */
export interface Store {
  get(table: string, key: Key, consistent?: boolean): Promise<Item | undefined>;
  /** Put an item; with `ifAbsent`, fail with ConditionFailedError when the key exists. */
  put(table: string, item: Item, options?: { ifAbsent?: boolean }): Promise<void>;
  /**
   * Set, remove and add to attributes of one item, creating it when absent unless `expect`
   * says otherwise, and return the item as it is after. `add` adds to numbers atomically (an
   * absent attribute counts as 0), so concurrent counters need no retries. `expect` holds
   * attribute values that must match (undefined meaning the attribute must be absent);
   * otherwise ConditionFailedError.
   */
  update(
    table: string,
    key: Key,
    change: {
      set?: Item;
      remove?: string[];
      add?: Record<string, number>;
      expect?: Record<string, unknown>;
    },
  ): Promise<Item>;
  /**
   * Delete one item. `expect` holds attribute values that must match, as for `update`;
   * otherwise ConditionFailedError and the item stays. Deleting an absent item without
   * `expect` succeeds.
   */
  delete(table: string, key: Key, options?: { expect?: Record<string, unknown> }): Promise<void>;
  query(table: string, input: QueryInput): AsyncIterable<Item>;
  batchGet(table: string, keys: Key[], consistent?: boolean): Promise<Item[]>;
  /**
   * Write many items, retrying unprocessed ones with backoff. Returns the items that were
   * still unprocessed after the retry limit so callers can fail their source records.
   */
  batchPut(table: string, items: Item[]): Promise<{ unprocessed: Item[] }>;
  /** Every item of a table, page by page. For operator tools and small tables only. */
  scan(table: string): AsyncIterable<Item>;
}

/** Signing of checkpoints: KMS ECC_NIST_P256 on AWS, a local ECDSA P-256 key otherwise. */
export interface Signer {
  /** Stable identifier of the key, recorded with each signature. */
  readonly keyId: string;
  /** ECDSA P-256 over SHA-256 of `message`; DER-encoded signature. */
  sign(message: Buffer): Promise<Buffer>;
  /** SubjectPublicKeyInfo PEM, enough to verify offline. */
  publicKeyPem(): Promise<string>;
}

/**
 * Encryption of small secrets kept in the store (an authenticator's TOTP seed): KMS on AWS,
 * AES-256-GCM under a local key otherwise. A sealed value opens only with the context it was
 * sealed with, so a value copied onto another account or purpose does not open.
 */
export interface Sealer {
  seal(plaintext: string, context: Record<string, string>): Promise<string>;
  open(sealed: string, context: Record<string, string>): Promise<string>;
}

export type ProbeResult = 'ok' | 'configured';

export interface LogRecord {
  /** Milliseconds since the epoch. */
  timestamp: number;
  message: string;
}

export interface LogRejection {
  record: LogRecord;
  reason: string;
}

/**
 * Append-only log: CloudWatch Logs on AWS, an append-only file locally. Nothing written
 * can be changed through this port.
 */
export interface LogSink {
  /** Throws when the sink cannot be used; 'configured' when it was not reached to check. */
  probe(): Promise<ProbeResult>;
  append(log: string, records: LogRecord[]): Promise<{ rejected: LogRejection[] }>;
  read(log: string): AsyncIterable<LogRecord>;
}

export interface Notification {
  topic: 'alerts' | 'breach' | 'drills';
  subject: string;
  message: string;
  attributes?: Record<string, string>;
}

/** SNS on AWS; a ledger file (and the terminal) locally. */
export interface Notifier {
  /** Throws when notifications cannot be sent; 'configured' when not reached to check. */
  probe(): Promise<ProbeResult>;
  publish(notification: Notification): Promise<{ id: string }>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
