import { badRequest } from './errors';

/**
 * react-admin simple-rest list parameters: `sort=["field","ASC"]`, `range=[0,24]` (inclusive
 * on both ends) and `filter={...}`. Anything malformed is a 400 naming the parameter.
 */
export interface ListParams {
  sort: { field: string; order: 'ASC' | 'DESC' };
  range: { start: number; end: number };
  filter: Record<string, unknown>;
}

/** One page may hold at most this many items. */
export const MAX_PAGE = 1000;

export function parseListParams(
  query: Record<string, string>,
  options: { sortable: string[]; filterable: string[]; defaultSort: ListParams['sort'] },
): ListParams {
  const sort = query.sort ? parseSort(query.sort, options.sortable) : options.defaultSort;
  const range = query.range ? parseRange(query.range) : { start: 0, end: 9 };
  const filter = query.filter ? parseFilter(query.filter, options.filterable) : {};
  return { sort, range, filter };
}

function parseJson(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(name, 'is not valid JSON');
  }
}

function parseSort(text: string, sortable: string[]): ListParams['sort'] {
  const value = parseJson('sort', text);
  if (!Array.isArray(value) || value.length !== 2) {
    throw badRequest('sort', 'must be ["field","ASC"|"DESC"]');
  }
  const [field, order] = value as [unknown, unknown];
  if (typeof field !== 'string' || !sortable.includes(field)) {
    throw badRequest('sort', `cannot sort by ${String(field)}; use one of ${sortable.join(', ')}`);
  }
  if (order !== 'ASC' && order !== 'DESC') throw badRequest('sort', 'order must be ASC or DESC');
  return { field, order };
}

function parseRange(text: string): ListParams['range'] {
  const value = parseJson('range', text);
  const valid =
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((n) => Number.isInteger(n) && n >= 0) &&
    (value[0] as number) <= (value[1] as number);
  if (!valid) throw badRequest('range', 'must be [start,end] with 0 <= start <= end');
  const [start, end] = value as [number, number];
  if (end - start + 1 > MAX_PAGE) throw badRequest('range', `may span at most ${MAX_PAGE} items`);
  return { start, end };
}

const isScalar = (v: unknown) =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

function parseFilter(text: string, filterable: string[]): Record<string, unknown> {
  const value = parseJson('filter', text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('filter', 'must be a JSON object');
  }
  for (const [key, wanted] of Object.entries(value)) {
    if (!filterable.includes(key)) {
      throw badRequest('filter', `cannot filter by ${key}; use one of ${filterable.join(', ')}`);
    }
    if (!isScalar(wanted) && !(Array.isArray(wanted) && wanted.every(isScalar))) {
      throw badRequest(`filter.${key}`, 'must be a value or a list of values');
    }
  }
  return value as Record<string, unknown>;
}

/** `Content-Range: <resource> <start>-<end>/<total>`, naming the last item actually returned. */
export function contentRange(resource: string, start: number, returned: number, total: number) {
  if (returned === 0) return `${resource} */${total}`;
  return `${resource} ${start}-${start + returned - 1}/${total}`;
}
