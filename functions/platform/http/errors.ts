/**
 * Errors shown to HTTP callers. Below 500 the message says what to fix; 500 and above get a
 * generic body with the request id, and the detail goes only to the log.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly reason: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason);
    this.name = 'HttpError';
  }
}

export const badRequest = (field: string, reason: string) =>
  new HttpError(400, 'invalid_request', reason, field);
export const invalidJson = (reason: string) => new HttpError(400, 'invalid_json', reason, 'body');
export const unsupportedMediaType = (reason: string) =>
  new HttpError(415, 'unsupported_media_type', reason, 'content-type');
export const unauthorized = (reason: string) => new HttpError(401, 'unauthorized', reason);
export const forbidden = (reason: string) => new HttpError(403, 'forbidden', reason);
export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} was not found`);
export const payloadTooLarge = (reason: string) =>
  new HttpError(413, 'payload_too_large', reason, 'body');
