import { TradeswarmError } from '../core/index.js';

/** One mistake in a spec. */
export interface SpecProblem {
  /** Dotted path of the field, e.g. `strategies[0].fastPeriod`. */
  readonly field: string;
  /** The value found (`undefined` when missing). */
  readonly value: unknown;
  /** What the field allows. */
  readonly allowed: string;
}

/**
 * A spec has mistakes; nothing ran. `problems` lists every one; the message names each
 * field, its value and what is allowed. Not retryable: fix the spec.
 */
export class SpecError extends TradeswarmError {
  override readonly name = 'SpecError';
  readonly isSpecError = true;

  constructor(
    readonly source: string,
    readonly problems: readonly SpecProblem[],
    options: { cause?: unknown } = {},
  ) {
    super(
      `${source} has ${problems.length} mistake${problems.length === 1 ? '' : 's'}; nothing ran. Fix:\n` +
        problems.map((p) => `  - ${p.field}: got ${describe(p.value)}; ${p.allowed}`).join('\n'),
      options,
    );
    this.field = problems[0]?.field ?? '(spec)';
  }

  /** The first field at fault. */
  readonly field: string;
}

/** Whether `error` is a {@link SpecError}. */
export function isSpecError(error: unknown): error is SpecError {
  return typeof error === 'object' && error !== null && (error as { isSpecError?: unknown }).isSpecError === true;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
