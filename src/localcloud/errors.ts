import { TradeswarmError, type TradeswarmErrorOptions } from '../core/index.js';

/** The E2B error codes the SDK maps to typed errors (`{code, message}` bodies with these statuses). */
export const API_STATUS = {
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  tooManyRequests: 429,
  internal: 500,
  unavailable: 503,
} as const;

/** A control-plane API failure with the HTTP status the SDK expects for it. */
export class LocalCloudError extends TradeswarmError {
  override readonly name: string = 'LocalCloudError';

  constructor(
    readonly status: number,
    message: string,
    options: TradeswarmErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** No sandbox with that id (or it was killed). */
export class SandboxNotFoundError extends LocalCloudError {
  override readonly name = 'SandboxNotFoundError';

  constructor(sandboxId: string) {
    super(API_STATUS.notFound, `sandbox ${sandboxId} not found: it was killed, timed out, or never existed; create a new one`);
  }
}

/** The host cannot give a sandbox the isolation it asked for. */
export class IsolationUnavailableError extends LocalCloudError {
  override readonly name = 'IsolationUnavailableError';

  constructor(what: string) {
    super(API_STATUS.unavailable, `this host cannot provide ${what}; the sandbox was not started (see the problems printed when the local cloud started)`);
  }
}
