/** Identity flows through the real routes, shared by the identity test suites. */
import { totpAt } from '../../functions/identity/totp';
import type { Clock } from '../../functions/platform/ports';
import { call } from './platform';

export const PASSWORD = 'correct horse battery staple 42';

/** A clock the test moves by hand; TOTP codes and session timers follow it. */
export class TestClock implements Clock {
  constructor(private at: number) {}
  now = () => new Date(this.at);
  advance(ms: number) {
    this.at += ms;
  }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The secret of an enrolment link: it travels in the fragment, never to the server. */
export const linkToken = (url: string) => new URL(url).hash.replace('#token=', '');

export interface Enrolled {
  token: string;
  secret: string;
  cookie: string;
  body: Record<string, unknown> & { recoveryCodes?: string[] };
}

/** Enrols through the routes: password, TOTP enrolment, first session. */
export async function enrol(
  base: string,
  clock: Clock,
  token: string,
  person?: Record<string, string>,
): Promise<Enrolled> {
  const started = await call(base, 'POST', '/v1/auth/enrol', {
    body: { token, password: PASSWORD, ...person },
  });
  if (started.json?.status !== 'mfa_enrolment_required') {
    throw new Error(`enrolment did not start: ${started.status} ${started.text}`);
  }
  const secret = started.json.totp.secret as string;
  const done = await call(base, 'POST', '/v1/auth/mfa', {
    body: { ticket: started.json.ticket, code: totpAt(secret, clock.now()) },
  });
  if (done.status !== 200) throw new Error(`enrolment did not finish: ${done.status}`);
  return {
    token: done.json.token as string,
    secret,
    cookie: done.headers.get('set-cookie') ?? '',
    body: done.json,
  };
}
