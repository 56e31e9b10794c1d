import type { Item, Store } from '../platform/ports';
import type { ListParams } from '../platform/http/list-params';
import { badRequest } from '../platform/http/errors';
import { type EntryBody, entryKey, utcOf } from './records';

/** An audit record as the API returns it: the event's fields plus where and how it was stored. */
export interface AuditRecordView extends Record<string, unknown> {
  id: string;
  eventId?: string;
  stream: string;
  seq: number;
  source: string;
  producer: string;
  format: string;
  receivedAt: string;
  hash: string;
}

export const SORTABLE = ['timestamp', 'receivedAt', 'userId', 'patientId', 'action', 'outcome'];
export const FILTERABLE = [
  'id',
  'patientId',
  'userId',
  'action',
  'outcome',
  'source',
  'from',
  'to',
  'q',
];

/** Accounting of disclosures looks back six years (45 CFR 164.316(b)(2), 164.528). */
export const ACCESS_REPORT_YEARS = 6;

export function toView(item: Item): AuditRecordView {
  const body = JSON.parse(String(item.body)) as EntryBody;
  const { id: eventId, ...event } = body.event;
  return {
    ...event,
    id: body.id,
    eventId,
    stream: body.stream,
    seq: body.seq,
    source: body.source,
    producer: body.producer,
    format: body.format,
    receivedAt: body.receivedAt,
    hash: String(item.hash),
  };
}

export async function getRecord(store: Store, table: string, id: string) {
  if (!/^[0-9a-f]{32}$/.test(id)) return undefined;
  const item = await store.get(table, entryKey(id), false);
  return item ? toView(item) : undefined;
}

export async function listRecords(
  store: Store,
  table: string,
  params: ListParams,
  now: Date,
): Promise<{ items: AuditRecordView[]; total: number }> {
  const { filter } = params;
  let matches: AuditRecordView[];
  if (filter.id !== undefined) {
    const ids = (Array.isArray(filter.id) ? filter.id : [filter.id]).map(String);
    const wanted = ids.filter((id) => /^[0-9a-f]{32}$/.test(id));
    const found = await store.batchGet(table, wanted.map(entryKey), false);
    matches = found.map(toView);
  } else {
    matches = [];
    for await (const item of candidates(store, table, filter, now)) {
      const view = toView(item);
      if (matchesFilter(view, filter)) matches.push(view);
    }
  }
  matches.sort(comparator(params.sort));
  return { items: matches.slice(params.range.start, params.range.end + 1), total: matches.length };
}

function bound(filter: Record<string, unknown>, name: 'from' | 'to'): string | undefined {
  const value = filter[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{4}-/.test(value) || Number.isNaN(Date.parse(value))) {
    throw badRequest(`filter.${name}`, 'must be an ISO 8601 date or date-time');
  }
  return utcOf(value);
}

/** A time filter without a patient or user reads one partition per month: ten years at most. */
export const MAX_MONTHS = 120;

/** Picks the narrowest index for the filter: patient, user, or month partitions by time. */
async function* candidates(
  store: Store,
  table: string,
  filter: Record<string, unknown>,
  now: Date,
) {
  const from =
    bound(filter, 'from') ?? new Date(now.getTime() - 7 * 365 * 86_400_000).toISOString();
  const to = bound(filter, 'to') ?? new Date(now.getTime() + 86_400_000).toISOString();
  const between = (name: string): [string, string, string] => [name, from, `${to}~`];

  if (typeof filter.patientId === 'string') {
    yield* store.query(table, {
      index: 'gsi2',
      partition: ['gsi2pk', `P#${filter.patientId}`],
      between: between('gsi2sk'),
    });
    return;
  }
  if (typeof filter.userId === 'string') {
    yield* store.query(table, {
      index: 'gsi3',
      partition: ['gsi3pk', `U#${filter.userId}`],
      between: between('gsi3sk'),
    });
    return;
  }
  const months = monthsBetween(from, to);
  if (months.length > MAX_MONTHS) {
    throw badRequest(
      'filter.from',
      `spans ${months.length} months; without a patientId or userId it may span at most ${MAX_MONTHS}`,
    );
  }
  for (const month of months) {
    yield* store.query(table, {
      index: 'gsi4',
      partition: ['gsi4pk', `M#${month}`],
      between: between('gsi4sk'),
    });
  }
}

/** The months from `from` to `to`; stops counting one past `MAX_MONTHS`, however wide. */
export function monthsBetween(from: string, to: string): string[] {
  const months: string[] = [];
  let year = Number(from.slice(0, 4));
  let month = Number(from.slice(5, 7));
  const last = to.slice(0, 7);
  for (;;) {
    const label = `${year}-${String(month).padStart(2, '0')}`;
    if (label > last) return months;
    months.push(label);
    if (months.length > MAX_MONTHS) return months;
    month += 1;
    if (month > 12) {
      month = 1;
      year += 1;
    }
  }
}

function matchesFilter(view: AuditRecordView, filter: Record<string, unknown>): boolean {
  for (const name of ['patientId', 'userId', 'action', 'outcome', 'source'] as const) {
    const wanted = filter[name];
    if (wanted === undefined) continue;
    const allowed = Array.isArray(wanted) ? wanted.map(String) : [String(wanted)];
    if (!allowed.includes(String(view[name]))) return false;
  }
  if (typeof filter.q === 'string' && filter.q.length > 0) {
    const q = filter.q.toLowerCase();
    const text = [view.userId, view.resourceType, view.resourceId, view.reason, view.application];
    if (!text.some((value) => typeof value === 'string' && value.toLowerCase().includes(q))) {
      return false;
    }
  }
  return true;
}

function comparator(sort: ListParams['sort']) {
  const direction = sort.order === 'ASC' ? 1 : -1;
  const key = (view: AuditRecordView) =>
    sort.field === 'timestamp' ? utcOf(String(view.timestamp)) : String(view[sort.field] ?? '');
  return (a: AuditRecordView, b: AuditRecordView) => {
    const x = key(a);
    const y = key(b);
    if (x === y) return a.id < b.id ? -direction : direction;
    return x < y ? -direction : direction;
  };
}

/** Who accessed a patient's record, when, and why: six years back from now. */
export async function accessReport(store: Store, table: string, patientId: string, now: Date) {
  const from = new Date(now);
  from.setUTCFullYear(from.getUTCFullYear() - ACCESS_REPORT_YEARS);
  const accesses = [];
  for await (const item of store.query(table, {
    index: 'gsi2',
    partition: ['gsi2pk', `P#${patientId}`],
    between: [
      'gsi2sk',
      from.toISOString(),
      `${new Date(now.getTime() + 86_400_000).toISOString()}~`,
    ],
    descending: true,
  })) {
    const view = toView(item);
    accesses.push({
      id: view.id,
      when: view.timestamp,
      who: { userId: view.userId, role: view.userRole },
      what: {
        action: view.action,
        resourceType: view.resourceType,
        resourceId: view.resourceId,
        fields: view.fieldsAccessed,
      },
      why: { purposeOfUse: view.purposeOfUse, reason: view.reason },
      where: { application: view.application, device: view.device, ipAddress: view.ipAddress },
      outcome: view.outcome,
    });
  }
  return {
    patientId,
    from: from.toISOString(),
    to: now.toISOString(),
    total: accesses.length,
    accesses,
  };
}

export async function listQuarantine(store: Store, table: string, start: number, end: number) {
  const items: Item[] = [];
  for await (const item of store.query(table, {
    index: 'gsi1',
    partition: ['gsi1pk', 'QUARANTINE'],
    descending: true,
  })) {
    items.push(item);
  }
  const view = items.map(({ pk, sk, gsi1pk, gsi1sk, ...rest }) => rest);
  return { items: view.slice(start, end + 1), total: view.length };
}
