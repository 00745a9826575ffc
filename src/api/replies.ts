import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidInputError, TradeswarmError, errorMessage } from '../core/index.js';

/**
 * What kind of error an {@link ErrorBody} is, for scripts to branch on (`name` is the exact class):
 * - `invalid-spec`: a spec has mistakes, each in `issues`; fix them;
 * - `invalid-input`: a value given (an option, a field, a file, a row of data) is wrong, see `field`; fix it;
 * - `usage`: the command line itself is wrong (an unknown option, a missing argument); see `--help`;
 * - `unauthorized`: the HTTP API wants its key (`Authorization: Bearer <key>`);
 * - `unavailable`: trying again later can succeed (`retryable`);
 * - `failed`: tradeswarm refused or stopped for a reason the message gives; retrying the same will not help;
 * - `internal`: an error tradeswarm did not expect (a bug, or a fault of the machine).
 */
export const ErrorCode = {
  invalidSpec: 'invalid-spec',
  invalidInput: 'invalid-input',
  usage: 'usage',
  unauthorized: 'unauthorized',
  unavailable: 'unavailable',
  failed: 'failed',
  internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The JSON body of every error answer. */
export interface ErrorBody {
  readonly error: {
    /** What kind of error, for scripts (see {@link ErrorCode}). */
    readonly code: ErrorCode;
    readonly name: string;
    readonly message: string;
    /** Whether sending the same request again later can succeed. */
    readonly retryable: boolean;
    /** The field at fault, for an {@link InvalidInputError}. */
    readonly field?: string;
    /** When to try again, also sent as `Retry-After` (whole seconds, at least 1). */
    readonly retryAfterMs?: number;
    /** Every field at fault, for an error that lists them (a spec's mistakes): its path, the value found, what is allowed. */
    readonly issues?: ReadonlyArray<{ readonly path: string; readonly got: unknown; readonly allowed: string }>;
    /** The server to ask instead, when this one follows another (a 503): who leads, its URL, its lease. */
    readonly leader?: { readonly holder: string; readonly url: string | null; readonly epoch: number; readonly expiresAt: string };
  };
}

/** The problems an error lists (a SpecError's), duck-typed so that the api needs no domain's error classes. */
function issuesOf(error: unknown): ErrorBody['error']['issues'] {
  const problems = (error as { problems?: unknown }).problems;
  if (!Array.isArray(problems)) return undefined;
  return problems.map((problem: { field?: unknown; value?: unknown; allowed?: unknown }) => ({ path: String(problem.field), got: problem.value ?? null, allowed: String(problem.allowed) }));
}

/** The server an error points at instead of this one (a follower's NotLeaderError), duck-typed like {@link issuesOf}. */
function leaderOf(error: unknown): ErrorBody['error']['leader'] {
  const leader = (error as { leader?: unknown }).leader;
  if (typeof leader !== 'object' || leader === null) return undefined;
  const { holder, url, epoch, expiresAt } = leader as Record<string, unknown>;
  return { holder: String(holder), url: typeof url === 'string' ? url : null, epoch: Number(epoch), expiresAt: String(expiresAt) };
}

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

/** The {@link ErrorBody} of `error`: its name, message, whether to retry, and the field or delay when it has them. */
export function errorBody(error: unknown): ErrorBody {
  const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return {
    error: {
      code: errorCodeOf(error),
      name: error instanceof Error ? error.name : 'Error',
      message: errorMessage(error),
      retryable: error instanceof TradeswarmError ? error.retryable : false,
      ...(error instanceof InvalidInputError ? { field: error.field } : {}),
      ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
      ...(issuesOf(error) === undefined ? {} : { issues: issuesOf(error) }),
      ...(leaderOf(error) === undefined ? {} : { leader: leaderOf(error) }),
    },
  };
}

/** The {@link ErrorCode} of `error`. */
export function errorCodeOf(error: unknown): ErrorCode {
  if (issuesOf(error) !== undefined) return ErrorCode.invalidSpec;
  if (error instanceof InvalidInputError) return ErrorCode.invalidInput;
  if (error instanceof TradeswarmError) return error.retryable ? ErrorCode.unavailable : ErrorCode.failed;
  return ErrorCode.internal;
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
