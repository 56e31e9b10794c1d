import { runtime } from '../runtime';
import type { HttpOptions } from './api';
import type { HttpRequest, Principal } from './event';

type Authenticate = (request: HttpRequest) => Promise<Principal | undefined>;

/**
 * HTTP options from the process runtime: its logger, the console origins CORS allows, and how
 * callers are established (the identity capability passes its session and API-key check).
 */
export function httpOptions(
  roles?: string[],
  extra: { authenticate?: Authenticate; stepUp?: boolean } = {},
): HttpOptions {
  const rt = runtime();
  return { log: rt.log, corsOrigins: rt.config.corsOrigins, roles, ...extra };
}
