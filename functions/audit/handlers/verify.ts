import type { Context } from 'aws-lambda';
import { runtime } from '../../platform/runtime';
import { httpHandler, type HttpResult } from '../../platform/http/api';
import { httpOptions } from '../../platform/http/options';
import { authenticateRequest } from '../../identity/authenticate';
import { AUDIT_READERS } from '../readers';
import type { HttpRequest } from '../../platform/http/event';
import { auditApiCall } from '../context';
import { verifyLog } from '../verify';

/** GET /v1/audit/verify: re-derives the whole log and names the first bad entry, if any. */
export async function verify(request: HttpRequest, _context: Context): Promise<HttpResult> {
  const rt = runtime();
  const report = await verifyLog({
    store: rt.store,
    table: rt.config.auditTable,
    sink: rt.sink,
    signer: rt.signer,
  });
  await auditApiCall(request, {
    action: 'execute',
    resourceType: 'AuditVerification',
    resourceId: 'audit-log',
  });
  return { status: 200, body: report };
}

export const handler = httpHandler(verify, () =>
  httpOptions(AUDIT_READERS, { authenticate: authenticateRequest }),
);
