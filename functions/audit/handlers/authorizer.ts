import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { runtime } from '../../platform/runtime';
import { normalizeHeaders } from '../../platform/http/event';
import { Producers } from '../producers';

export interface SimpleAuthorizerResult {
  isAuthorized: boolean;
  context?: { producer: string; role: string };
}

/**
 * The HTTP API's Lambda authorizer (simple responses): checks the x-api-key header against
 * the stored key hashes. The local runner calls this same function before each route.
 */
export async function handler(
  event: APIGatewayRequestAuthorizerEventV2,
): Promise<SimpleAuthorizerResult> {
  const rt = runtime();
  const key = normalizeHeaders(event.headers)['x-api-key'];
  const producer = await new Producers(rt.store, rt.config.auditTable, rt.clock).authenticate(key);
  if (!producer) return { isAuthorized: false };
  return { isAuthorized: true, context: { producer: producer.name, role: producer.role } };
}
