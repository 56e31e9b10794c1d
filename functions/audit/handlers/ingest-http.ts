import type { Context } from 'aws-lambda';
import { httpOptions } from '../../platform/http/options';
import { httpHandler, type HttpResult } from '../../platform/http/api';
import type { HttpRequest } from '../../platform/http/event';
import { badRequest, payloadTooLarge } from '../../platform/http/errors';
import { auditLog } from '../context';
import { decodeDocument } from '../decode';
import { streamName } from './streams';

/** Events accepted in one request; larger sets belong on the queue or the stream. */
export const MAX_EVENTS_PER_REQUEST = 1000;

/**
 * POST /v1/audit/events: a JSON array of native events, one FHIR AuditEvent, or a FHIR
 * Bundle of AuditEvents. Answers 202 with a result per event.
 */
export async function ingestHttp(request: HttpRequest, _context: Context): Promise<HttpResult> {
  if (request.body === null || typeof request.body !== 'object') {
    throw badRequest('body', 'must be an array of events, a FHIR AuditEvent or a FHIR Bundle');
  }
  const decoded = decodeDocument(request.body);
  if (decoded.length === 0) throw badRequest('body', 'holds no events');
  if (decoded.length > MAX_EVENTS_PER_REQUEST) {
    throw payloadTooLarge(`send at most ${MAX_EVENTS_PER_REQUEST} events per request`);
  }

  const producer = request.principal?.id ?? 'anonymous';
  const raw = Array.isArray(request.body) ? request.body : undefined;
  const outcomes = await auditLog().ingest(
    { source: 'http', stream: streamName('http', producer), producer },
    decoded.map((d, index) => ({
      ref: index,
      decoded: d,
      raw: raw ? raw[d.entry ?? index] : request.body,
    })),
  );

  const results = outcomes
    .sort((a, b) => a.ref - b.ref)
    .map(({ ref, ...outcome }) => ({ index: ref, ...outcome }));
  const count = (status: string) => results.filter((r) => r.status === status).length;
  return {
    status: 202,
    body: {
      accepted: count('accepted'),
      duplicate: count('duplicate'),
      rejected: count('rejected'),
      failed: count('failed'),
      results,
    },
  };
}

export const handler = httpHandler(ingestHttp, () => httpOptions(['producer']));
