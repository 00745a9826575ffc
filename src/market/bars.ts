/** One OHLCV bar. Immutable: bars made by this domain are frozen. */
export interface Bar {
  readonly symbol: string;
  /** Start of the bar, milliseconds since the Unix epoch (UTC). */
  readonly timeMs: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** Traded quantity in the bar (shares, contracts); >= 0. */
  readonly volume: number;
}

/** One thing wrong with a bar: the field at fault and what is wrong with it. */
export interface BarProblem {
  readonly field: keyof Bar;
  readonly message: string;
}

/** Largest time a `Date` holds, in ms since the epoch (in the year 275760): where generated and replayed time ends. */
export const MAX_DATE_MS = 8_640_000_000_000_000;

const PRICE_FIELDS = ['open', 'high', 'low', 'close'] as const;

const NO_PROBLEMS: readonly BarProblem[] = Object.freeze([]);

/**
 * Every problem with `bar`, most telling first; empty (a shared, frozen array) when the bar is
 * valid. A valid bar has a non-empty symbol, an integer `timeMs`, finite positive prices with
 * `high >= max(open, close)` and `low <= min(open, close)` (hence `high >= low`), and a finite
 * `volume >= 0`.
 */
export function validateBar(bar: Bar): readonly BarProblem[] {
  return isValid(bar) ? NO_PROBLEMS : problemsOf(bar);
}

/**
 * The rules of {@link validateBar} as one expression, without naming what is wrong: the venue
 * checks every bar it is fed, and listing problems (a read by field name per price) costs more.
 */
function isValid(bar: Bar): boolean {
  const { symbol, open, high, low, close, volume } = bar;
  return (
    typeof symbol === 'string' &&
    symbol.trim() !== '' &&
    Number.isSafeInteger(bar.timeMs) &&
    Number.isFinite(open) &&
    open > 0 &&
    Number.isFinite(high) &&
    high > 0 &&
    Number.isFinite(low) &&
    low > 0 &&
    Number.isFinite(close) &&
    close > 0 &&
    Number.isFinite(volume) &&
    volume >= 0 &&
    high >= low &&
    high >= Math.max(open, close) &&
    low <= Math.min(open, close)
  );
}

function problemsOf(bar: Bar): BarProblem[] {
  const problems: BarProblem[] = [];
  if (typeof bar.symbol !== 'string' || bar.symbol.trim() === '') {
    problems.push({ field: 'symbol', message: `symbol must be a non-empty string, got ${JSON.stringify(bar.symbol)}` });
  }
  if (!Number.isSafeInteger(bar.timeMs)) {
    problems.push({ field: 'timeMs', message: `timeMs must be an integer number of milliseconds, got ${bar.timeMs}` });
  }
  let pricesFinite = true;
  for (const field of PRICE_FIELDS) {
    const value = bar[field];
    if (!Number.isFinite(value)) {
      problems.push({ field, message: `${field} must be a finite number, got ${value}` });
      pricesFinite = false;
    } else if (value <= 0) {
      problems.push({ field, message: `${field} must be > 0, got ${value}` });
    }
  }
  if (!Number.isFinite(bar.volume) || bar.volume < 0) {
    problems.push({ field: 'volume', message: `volume must be a finite number >= 0, got ${bar.volume}` });
  }
  if (!pricesFinite) return problems;
  if (bar.high < bar.low) {
    problems.push({ field: 'high', message: `high ${bar.high} is below low ${bar.low}` });
  }
  const top = Math.max(bar.open, bar.close);
  if (bar.high < top) {
    problems.push({ field: 'high', message: `high ${bar.high} is below max(open, close) ${top}` });
  }
  const bottom = Math.min(bar.open, bar.close);
  if (bar.low > bottom) {
    problems.push({ field: 'low', message: `low ${bar.low} is above min(open, close) ${bottom}` });
  }
  return problems;
}

/** A frozen copy of `bar` (no validation; see {@link validateBar}). */
export function freezeBar(bar: Bar): Bar {
  return Object.freeze({
    symbol: bar.symbol,
    timeMs: bar.timeMs,
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    volume: bar.volume,
  });
}
