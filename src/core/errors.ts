/** Options every tradeswarm error accepts. */
export interface TradeswarmErrorOptions {
  cause?: unknown;
  /** Whether trying the same thing again later can succeed. */
  retryable?: boolean;
}

/**
 * The root of every error tradeswarm throws on purpose. Messages say what was wrong and what to do.
 */
export class TradeswarmError extends Error {
  override readonly name: string = 'TradeswarmError';
  readonly retryable: boolean;

  constructor(message: string, options: TradeswarmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/** A value supplied by the user (option, config field, request field) is invalid. */
export class InvalidInputError extends TradeswarmError {
  override readonly name: string = 'InvalidInputError';

  constructor(
    readonly field: string,
    /** What is wrong and what is allowed, without the field (the message is `<field>: <detail>`). */
    readonly detail: string,
    options: TradeswarmErrorOptions = {},
  ) {
    super(`${field}: ${detail}`, options);
  }
}

/** Why a snapshot could not be restored (see {@link IncompatibleSnapshotError}). */
export const SnapshotProblem = {
  /** It was written in a format version this build does not read. */
  version: 'version',
  /** It was made from a different spec (a period, a symbol, a name, …). */
  spec: 'spec',
  /** It is not a snapshot of this kind of object, or it is damaged. */
  invalid: 'invalid',
} as const;
export type SnapshotProblem = (typeof SnapshotProblem)[keyof typeof SnapshotProblem];

/** One field in which a snapshot's spec differs from the spec of the object it was restored into. */
export interface SnapshotDifference {
  /** Its path in the spec, e.g. `slowPeriod` or `strategies[1].symbols`. */
  readonly field: string;
  /** Its value in the snapshot (`undefined`: absent there). */
  readonly snapshot: unknown;
  /** Its value in the object's own spec (`undefined`: absent there). */
  readonly expected: unknown;
}

/**
 * A snapshot cannot be restored into an object: it is of a format version this build does not read,
 * it was made from a different spec, or it is not a snapshot of that kind of object (damaged, or of
 * something else). Nothing was restored: the object is as it was. Not retryable: the same snapshot
 * is refused again; rebuild the state from the inputs instead (an agent replays its steps from the first).
 */
export class IncompatibleSnapshotError extends TradeswarmError {
  override readonly name = 'IncompatibleSnapshotError';
  /** Marker for {@link isIncompatibleSnapshotError}; survives bundling and realm boundaries. */
  readonly isIncompatibleSnapshotError = true;

  constructor(
    /** What was being restored, e.g. `strategy "sma-crossover-SPY-50-200"`. */
    readonly subject: string,
    readonly problem: SnapshotProblem,
    /** What is wrong, for people: the versions, the differing fields, or the field that is invalid. */
    readonly detail: string,
    /** With `problem: 'spec'`: every differing field. */
    readonly differences: readonly SnapshotDifference[] = [],
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `cannot restore ${subject} from this snapshot: ${detail}. Nothing was restored; rebuild its state from its inputs instead ` +
        '(an agent replays its steps from the first), or restore a snapshot made by the same spec and version',
      { ...options, retryable: false },
    );
  }
}

/** Whether `error` is an {@link IncompatibleSnapshotError}. */
export function isIncompatibleSnapshotError(error: unknown): error is IncompatibleSnapshotError {
  return typeof error === 'object' && error !== null && (error as { isIncompatibleSnapshotError?: unknown }).isIncompatibleSnapshotError === true;
}

/** Returns the message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** At most this many errors of a cause chain are told. */
const MAX_CAUSES = 5;

/**
 * The message of anything thrown, followed by those of its causes (`fetch failed: connect ECONNREFUSED
 * 127.0.0.1:9`), each told once: a library's own message is often too general to act on, and the
 * reason is in the cause.
 */
export function errorChain(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let told = 0; told < MAX_CAUSES && current !== undefined && current !== null; told++) {
    const text = describeOne(current);
    if (text !== '' && !parts.some((part) => part.includes(text))) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

function describeOne(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Node's connection attempts to several addresses fail with an AggregateError without a message.
  if (error.message === '' && error instanceof AggregateError) {
    const inner = error.errors.filter((item): item is Error => item instanceof Error);
    return inner.find((item) => item.message !== '')?.message ?? (inner[0] === undefined ? codeOf(error) : codeOf(inner[0]));
  }
  return error.message || codeOf(error);
}

function codeOf(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
}
