import type { Item } from '../ports';

/** DynamoDB's item size limit: 400 KB including attribute names. */
export const MAX_ITEM_BYTES = 400 * 1024;

/** Key and index attributes of every Vigil table: DynamoDB refuses empty strings in them. */
export const KEY_ATTRIBUTES = [
  'pk',
  'sk',
  'gsi1pk',
  'gsi1sk',
  'gsi2pk',
  'gsi2sk',
  'gsi3pk',
  'gsi3sk',
  'gsi4pk',
  'gsi4sk',
];

/** DynamoDB's key size limits, for the table and every index alike. */
export const MAX_PARTITION_KEY_BYTES = 2048;
export const MAX_SORT_KEY_BYTES = 1024;

export class StoreRuleError extends Error {
  constructor(
    readonly attribute: string,
    reason: string,
  ) {
    super(`item rejected: ${attribute} ${reason}`);
    this.name = 'StoreRuleError';
  }
}

/**
 * Reject what DynamoDB would reject, whichever server is behind the adapter, so nothing can
 * pass against the embedded store and fail on AWS.
 */
export function assertStorable(item: Item): void {
  for (const name of KEY_ATTRIBUTES) {
    const value = item[name];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new StoreRuleError(name, 'must be a string');
    if (value.length === 0) throw new StoreRuleError(name, 'must not be an empty string');
    const limit = name.endsWith('pk') ? MAX_PARTITION_KEY_BYTES : MAX_SORT_KEY_BYTES;
    if (Buffer.byteLength(value) > limit) {
      throw new StoreRuleError(name, `is over the ${limit} byte key limit`);
    }
  }
  const size = itemSize(item);
  if (size > MAX_ITEM_BYTES) {
    throw new StoreRuleError('(item)', `is ${size} bytes, over the ${MAX_ITEM_BYTES} byte limit`);
  }
}

/** Size as DynamoDB counts it: attribute names plus values, lists and maps with overhead. */
export function itemSize(item: Item): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += Buffer.byteLength(name) + valueSize(value);
  }
  return size;
}

function valueSize(value: unknown): number {
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number')
    return Math.ceil(String(value).replace(/[-.]/g, '').length / 2) + 1;
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) {
    let total = 0;
    for (const member of value) total += valueSize(member);
    return total;
  }
  if (Array.isArray(value)) return 3 + value.reduce((sum, v) => sum + 1 + valueSize(v), 0);
  if (typeof value === 'object') return 3 + itemSize(value as Item) + Object.keys(value).length;
  return 0;
}
