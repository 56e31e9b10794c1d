import type { Context } from 'aws-lambda';
import { runtime } from '../runtime';
import { httpHandler, type HttpResult } from '../http/api';
import { httpOptions } from '../http/options';
import type { HttpRequest } from '../http/event';

type State = 'ok' | 'configured' | 'error';

/** GET /health: the version and the state of each adapter. No PHI, no secrets, no details. */
export async function health(_request: HttpRequest, _context: Context): Promise<HttpResult> {
  const rt = runtime();
  const probe = async (check: () => Promise<unknown>): Promise<State> => {
    try {
      return (await check()) === 'configured' ? 'configured' : 'ok';
    } catch (error) {
      rt.log.warn('health probe failed', { error: error as Error });
      return 'error';
    }
  };
  const adapters = {
    store: await probe(() => rt.store.get(rt.config.auditTable, { pk: 'HEALTH', sk: 'H' })),
    keys: await probe(() => rt.signer.publicKeyPem()),
    logSink: await probe(() => rt.sink.probe()),
    notifier: await probe(() => rt.notifier.probe()),
  };
  const ok = Object.values(adapters).every((state) => state !== 'error');
  return {
    status: ok ? 200 : 503,
    body: {
      status: ok ? 'ok' : 'degraded',
      version: rt.config.version,
      mode: rt.config.adapters,
      adapters,
    },
  };
}

export const handler = httpHandler(health, () => httpOptions());
