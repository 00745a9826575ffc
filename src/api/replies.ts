import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, type ErrorBody, InvalidInputError, TradeswarmError, errorBody, errorMessage } from '../core/index.js';

/**
 * How the routes of one domain answer its own errors: the status that says whether to retry (404 for
 * something of the caller's that does not exist, 409 for a conflict the caller must resolve, 429 for
 * busy, …), or `undefined` to leave an error to the project's error tree ({@link statusForError}).
 */
export type ErrorStatusOf = (error: unknown) => number | undefined;

/** What {@link mapErrors} adds to a plugin's routes. */
export interface ErrorMapping {
  /** The domain's own statuses. @default none: the project's error tree alone */
  readonly statusOf?: ErrorStatusOf;
  /**
   * What to send instead, added to the message when a request is refused before a route ran (malformed
   * JSON, a body over the limit).
   * @default 'send a JSON object'
   */
  readonly requestHint?: string;
}

/**
 * The status for `error`: `statusOf`'s when it names one, else by the project's error tree: 400 for an
 * {@link InvalidInputError} (fix the request), 503 for any other retryable {@link TradeswarmError}
 * (try again later), 500 for anything else (a fault of ours).
 */
export function statusForError(error: unknown, statusOf?: ErrorStatusOf): number {
  const own = statusOf?.(error);
  if (own !== undefined) return own;
  if (error instanceof InvalidInputError) return 400;
  if (error instanceof TradeswarmError && error.retryable) return 503;
  return 500;
}

/** Fastify's own refusals (malformed JSON, body too large, wrong content type) carry a 4xx `statusCode`. */
function fastifyRefusal(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/**
 * A Fastify error handler answering every error as JSON with the status that says whether to retry
 * (and `Retry-After` when the error says when); a 500 is logged, as a fault of ours.
 */
export function errorHandler(mapping: ErrorMapping = {}): (error: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  const requestHint = mapping.requestHint ?? 'send a JSON object';
  return (error, request, reply) => {
    const refused = fastifyRefusal(error);
    if (refused !== undefined) {
      return reply.code(refused).send({ error: { code: ErrorCode.invalidInput, name: 'BadRequest', message: `${errorMessage(error)}; ${requestHint}`, retryable: false } } satisfies ErrorBody);
    }
    const status = statusForError(error, mapping.statusOf);
    if (status === 500) request.log.error({ error: errorMessage(error), url: request.url }, 'api: unexpected error');
    const body = errorBody(error);
    if (body.error.retryAfterMs !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(body.error.retryAfterMs / 1000))));
    return reply.code(status).send(body);
  };
}

/**
 * Gives the routes a plugin registers (in its own encapsulated context, as Fastify plugins have) their
 * domain's error statuses and request hint; every other error is answered by the project's error tree,
 * as the rest of the app answers it. Call it first thing in the plugin, on the plugin's own instance.
 */
export function mapErrors(app: FastifyInstance, mapping: ErrorMapping): void {
  app.setErrorHandler(errorHandler(mapping));
}
