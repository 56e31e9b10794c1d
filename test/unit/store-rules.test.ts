import {
  MAX_ITEM_BYTES,
  MAX_PARTITION_KEY_BYTES,
  MAX_SORT_KEY_BYTES,
  StoreRuleError,
  assertStorable,
} from '../../functions/platform/store/rules';

describe('assertStorable', () => {
  it('accepts keys at the size limits, counted in bytes', () => {
    expect(() =>
      assertStorable({
        pk: 'p'.repeat(MAX_PARTITION_KEY_BYTES),
        sk: 's'.repeat(MAX_SORT_KEY_BYTES),
        gsi1pk: 'g'.repeat(MAX_PARTITION_KEY_BYTES),
      }),
    ).not.toThrow();
  });

  it('refuses a partition key one byte over, naming the attribute', () => {
    expect(() => assertStorable({ pk: 'p'.repeat(MAX_PARTITION_KEY_BYTES + 1), sk: 's' })).toThrow(
      new StoreRuleError('pk', `is over the ${MAX_PARTITION_KEY_BYTES} byte key limit`),
    );
  });

  it('refuses a sort key over its limit when multi-byte characters push it there', () => {
    // 512 two-byte characters fit; one more is 1026 bytes although only 513 characters.
    const fits = 'é'.repeat(MAX_SORT_KEY_BYTES / 2);
    expect(() => assertStorable({ pk: 'p', sk: fits })).not.toThrow();
    expect(() => assertStorable({ pk: 'p', gsi2sk: `${fits}é` })).toThrow(/gsi2sk is over/);
  });

  it('refuses empty and non-string keys and oversized items', () => {
    expect(() => assertStorable({ pk: '', sk: 's' })).toThrow(/pk must not be an empty string/);
    expect(() => assertStorable({ pk: 1, sk: 's' })).toThrow(/pk must be a string/);
    expect(() => assertStorable({ pk: 'p', sk: 's', body: 'x'.repeat(MAX_ITEM_BYTES) })).toThrow(
      /over the 409600 byte limit/,
    );
  });
});
