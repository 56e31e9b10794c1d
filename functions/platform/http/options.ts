import { runtime } from '../runtime';
import type { HttpOptions } from './api';

/** HTTP options from the process runtime: its logger and the console origins CORS allows. */
export function httpOptions(roles?: string[]): HttpOptions {
  const rt = runtime();
  return { log: rt.log, corsOrigins: rt.config.corsOrigins, roles };
}
