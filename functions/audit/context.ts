import { runtime } from '../platform/runtime';
import type { HttpRequest } from '../platform/http/event';
import { AuditLog } from './service';
import type { AuditAction } from './event';

let log: AuditLog | undefined;

/** The process's audit log, over the runtime's adapters. */
export function auditLog(): AuditLog {
  const rt = runtime();
  log ??= new AuditLog({
    store: rt.store,
    table: rt.config.auditTable,
    signer: rt.signer,
    sink: rt.sink,
    clock: rt.clock,
    log: rt.log,
  });
  return log;
}

/** For tests that swap the runtime: forget the audit log built over the previous one. */
export function resetAuditLog(): void {
  log = undefined;
}

/** The stream that records Vigil's own API calls. */
export const API_STREAM = 'vigil-api';

/**
 * Vigil's own API calls on audit data are audited into the same log: who read which
 * records, from where. Query strings are not recorded, as filters may name patients.
 */
export async function auditApiCall(
  request: HttpRequest,
  what: { action: AuditAction; resourceType: string; resourceId: string; patientId?: string },
): Promise<void> {
  const principal = request.principal;
  await auditLog().ingest(
    { source: 'api', stream: API_STREAM, producer: 'vigil' },
    [
      {
        ref: request.requestId,
        sourceRef: `api:${request.requestId}`,
        decoded: {
          format: 'native',
          parsed: {
            ok: true,
            value: {
              userId: principal?.id ?? 'anonymous',
              userRole: principal?.roles.join(' '),
              action: what.action,
              resourceType: what.resourceType,
              resourceId: what.resourceId,
              patientId: what.patientId,
              ipAddress: request.sourceIp,
              userAgent: request.userAgent,
              timestamp: runtime().clock.now().toISOString(),
              sessionId: request.requestId,
              application: 'vigil-api',
              outcome: 'success',
            },
          },
        },
      },
    ],
    { checkpoint: false },
  );
}
