import crypto from 'node:crypto';
import type { Clock, Store } from '../platform/ports';

/**
 * Producers authenticate with a per-producer API key. The key is shown once at creation and
 * stored only as its SHA-256: keys are 256 random bits, so a slow password hash adds nothing.
 * `reader` keys may query and verify the log; `producer` keys may only send events.
 */
export const PRODUCER_ROLES = ['producer', 'reader'] as const;
export type ProducerRole = (typeof PRODUCER_ROLES)[number];

export interface Producer {
  name: string;
  role: ProducerRole;
  createdAt: string;
  revokedAt?: string;
  keyPrefix: string;
}

const NAME = /^[a-z0-9][a-z0-9-]{1,62}$/;
const KEY_PREFIX = 'vgl_';

export class ProducerError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(reason);
    this.name = 'ProducerError';
  }
}

const hashKey = (key: string) => crypto.hash('sha256', key, 'hex');
const producerKey = (name: string) => ({ pk: `PRODUCER#${name}`, sk: 'P' });
const apiKeyKey = (key: string) => ({ pk: `APIKEY#${hashKey(key)}`, sk: 'K' });

export class Producers {
  constructor(
    private readonly store: Store,
    private readonly table: string,
    private readonly clock: Clock,
  ) {}

  async create(
    name: string,
    role: ProducerRole = 'producer',
  ): Promise<{ producer: Producer; apiKey: string }> {
    if (!NAME.test(name)) {
      throw new ProducerError('name', 'use 2-63 lowercase letters, digits and dashes');
    }
    if (!PRODUCER_ROLES.includes(role))
      throw new ProducerError('role', `use ${PRODUCER_ROLES.join(' or ')}`);
    const apiKey = `${KEY_PREFIX}${crypto.randomBytes(32).toString('base64url')}`;
    const producer: Producer = {
      name,
      role,
      createdAt: this.clock.now().toISOString(),
      keyPrefix: apiKey.slice(0, 8),
    };
    try {
      await this.store.put(
        this.table,
        {
          ...producerKey(name),
          gsi1pk: 'PRODUCERS',
          gsi1sk: name,
          ...producer,
          keyHash: hashKey(apiKey),
        },
        { ifAbsent: true },
      );
    } catch (error) {
      if ((error as Error).name === 'ConditionFailedError') {
        throw new ProducerError('name', `a producer named ${name} exists already`);
      }
      throw error;
    }
    await this.store.put(this.table, { ...apiKeyKey(apiKey), producer: name, role });
    return { producer, apiKey };
  }

  async list(): Promise<Producer[]> {
    const producers: Producer[] = [];
    for await (const item of this.store.query(this.table, {
      index: 'gsi1',
      partition: ['gsi1pk', 'PRODUCERS'],
    })) {
      producers.push({
        name: String(item.name),
        role: item.role as ProducerRole,
        createdAt: String(item.createdAt),
        revokedAt: item.revokedAt as string | undefined,
        keyPrefix: String(item.keyPrefix),
      });
    }
    return producers;
  }

  async revoke(name: string): Promise<void> {
    const item = await this.store.get(this.table, producerKey(name));
    if (!item) throw new ProducerError('name', `no producer named ${name}`);
    const at = this.clock.now().toISOString();
    await this.store.update(this.table, producerKey(name), { set: { revokedAt: at } });
    await this.store.update(
      this.table,
      { pk: `APIKEY#${String(item.keyHash)}`, sk: 'K' },
      { set: { revokedAt: at } },
    );
  }

  /** The producer a key belongs to, or undefined for an unknown or revoked key. */
  async authenticate(
    key: string | undefined,
  ): Promise<{ name: string; role: ProducerRole } | undefined> {
    if (!key || !key.startsWith(KEY_PREFIX) || key.length > 128) return undefined;
    const item = await this.store.get(this.table, apiKeyKey(key));
    if (!item || item.revokedAt) return undefined;
    return { name: String(item.producer), role: item.role as ProducerRole };
  }
}
