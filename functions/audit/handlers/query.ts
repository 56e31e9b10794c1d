import type { Context } from 'aws-lambda';
import { runtime } from '../../platform/runtime';
import { httpHandler, type HttpResult } from '../../platform/http/api';
import { httpOptions } from '../../platform/http/options';
import { authenticateRequest } from '../../identity/authenticate';
import { AUDIT_READERS } from '../readers';
import type { HttpRequest } from '../../platform/http/event';
import { notFound } from '../../platform/http/errors';
import { contentRange, parseListParams } from '../../platform/http/list-params';
import { auditApiCall } from '../context';
import {
  FILTERABLE,
  SORTABLE,
  accessReport,
  getRecord,
  listQuarantine,
  listRecords,
} from '../query';

type Route = (request: HttpRequest, match: RegExpExecArray) => Promise<HttpResult>;

/** The read side of the audit log, in react-admin's simple-rest conventions. */
const ROUTES: Array<[RegExp, Route]> = [
  [/^\/v1\/audit-events\/?$/, list],
  [/^\/v1\/audit-events\/([^/]+)$/, one],
  [/^\/v1\/patients\/([^/]+)\/access-report$/, report],
  [/^\/v1\/audit\/quarantine\/?$/, quarantine],
];

export async function query(request: HttpRequest, _context: Context): Promise<HttpResult> {
  for (const [pattern, route] of ROUTES) {
    const match = pattern.exec(request.path);
    if (match) return route(request, match);
  }
  throw notFound(`the route ${request.path}`);
}

async function list(request: HttpRequest): Promise<HttpResult> {
  const rt = runtime();
  const params = parseListParams(request.query, {
    sortable: SORTABLE,
    filterable: FILTERABLE,
    defaultSort: { field: 'timestamp', order: 'DESC' },
  });
  const { items, total } = await listRecords(
    rt.store,
    rt.config.auditTable,
    params,
    rt.clock.now(),
  );
  await auditApiCall(request, { action: 'view', resourceType: 'AuditEvent', resourceId: 'list' });
  return {
    status: 200,
    body: items,
    headers: {
      'content-range': contentRange('audit-events', params.range.start, items.length, total),
    },
  };
}

async function one(request: HttpRequest, match: RegExpExecArray): Promise<HttpResult> {
  const rt = runtime();
  const id = decodeURIComponent(match[1] ?? '');
  const record = await getRecord(rt.store, rt.config.auditTable, id);
  if (!record) throw notFound(`audit event ${id}`);
  await auditApiCall(request, {
    action: 'view',
    resourceType: 'AuditEvent',
    resourceId: id,
    patientId: record.patientId as string | undefined,
  });
  return { status: 200, body: record };
}

async function report(request: HttpRequest, match: RegExpExecArray): Promise<HttpResult> {
  const rt = runtime();
  const patientId = decodeURIComponent(match[1] ?? '');
  const body = await accessReport(rt.store, rt.config.auditTable, patientId, rt.clock.now());
  await auditApiCall(request, {
    action: 'view',
    resourceType: 'AccessReport',
    resourceId: patientId,
    patientId,
  });
  return { status: 200, body };
}

async function quarantine(request: HttpRequest): Promise<HttpResult> {
  const rt = runtime();
  const params = parseListParams(request.query, {
    sortable: ['at'],
    filterable: [],
    defaultSort: { field: 'at', order: 'DESC' },
  });
  const { items, total } = await listQuarantine(
    rt.store,
    rt.config.auditTable,
    params.range.start,
    params.range.end,
  );
  await auditApiCall(request, { action: 'view', resourceType: 'Quarantine', resourceId: 'list' });
  return {
    status: 200,
    body: items,
    headers: {
      'content-range': contentRange('quarantine', params.range.start, items.length, total),
    },
  };
}

export const handler = httpHandler(query, () =>
  httpOptions(AUDIT_READERS, { authenticate: authenticateRequest }),
);
