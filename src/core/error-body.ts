import { InvalidInputError, TradeswarmError, errorMessage } from './errors.js';

// The JSON form of any error, as the HTTP API answers it and `--json` prints it. It lives in core, beside
// the error tree it reads, so that a client command prints its errors without loading the API's server.

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
function errorCodeOf(error: unknown): ErrorCode {
  if (issuesOf(error) !== undefined) return ErrorCode.invalidSpec;
  if (error instanceof InvalidInputError) return ErrorCode.invalidInput;
  if (error instanceof TradeswarmError) return error.retryable ? ErrorCode.unavailable : ErrorCode.failed;
  return ErrorCode.internal;
}
