/**
 * JSON canonicalization per RFC 8785 (JCS): object members sorted by UTF-16 code units,
 * numbers in ECMAScript shortest form, strings escaped as JSON.stringify does, no whitespace.
 * Members whose value is undefined are left out, as JSON.stringify leaves them out.
 */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no NaN or Infinity');
      return JSON.stringify(value);
    case 'object':
      return Array.isArray(value) ? canonicalArray(value) : canonicalObject(value as object);
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value}`);
  }
}

function canonicalArray(values: unknown[]): string {
  return `[${values.map((v) => (v === undefined ? 'null' : canonicalize(v))).join(',')}]`;
}

function canonicalObject(object: object): string {
  const record = object as Record<string, unknown>;
  // The default sort compares UTF-16 code units, which is exactly the order RFC 8785 asks for.
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalize(record[key])}`).join(',')}}`;
}
