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
    message: string,
    options: TradeswarmErrorOptions = {},
  ) {
    super(`${field}: ${message}`, options);
  }
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
