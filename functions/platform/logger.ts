import { Logger } from '@aws-lambda-powertools/logger';

/**
 * One JSON line per log entry with fixed keys. Messages are constants; details go in fields.
 * PHI and secrets never enter a log line: callers pass identifiers and counts only.
 */
export type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export function createLogger(service = 'vigil'): Logger {
  return new Logger({ serviceName: service });
}

/** A logger that drops everything, for tests and tools that print their own output. */
export const silentLog: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
