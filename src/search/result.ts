// The shape of a parameter search's result: made by the search (src/backtest/optimize/), shown by the
// CLI and by the HTML page (src/report/), which may not import src/backtest/ (only the CLI runs backtests).

/** A parameter value: a number, or a word for a field that takes one (`side=long,both`). */
export type ParameterValue = number | string;

/** The statistics a search ranks and shows: the backtest report's fields of the same names (`trades`: how many). */
export interface RunStatistics {
  readonly totalReturn: number;
  readonly sharpe: number | null;
  readonly sortino: number | null;
  readonly maxDrawdown: number;
  readonly winRate: number | null;
  readonly exposure: number;
  readonly finalEquity: number;
  readonly trades: number;
}

/** The report fields `--maximize` and `--minimize` take. */
export const METRICS = ['totalReturn', 'sharpe', 'sortino', 'maxDrawdown', 'winRate', 'exposure', 'finalEquity', 'trades'] as const;
export type Metric = (typeof METRICS)[number];

/** How walk-forward in-sample parts are laid: all the data before the out-of-sample part, or the one part before it. */
export const WalkForwardMode = { rolling: 'rolling', anchored: 'anchored' } as const;
export type WalkForwardMode = (typeof WalkForwardMode)[keyof typeof WalkForwardMode];

/** A range of the data's time steps, `[from, to)`, and the times of its first and last step. */
export interface StepRange {
  readonly from: number;
  readonly to: number;
  readonly firstTimeMs: number;
  readonly lastTimeMs: number;
}

/** A combination's result. */
export interface SearchRow {
  /** Place in the ranking, 1 first; `null` for a run not finished (after a stop). */
  readonly rank: number | null;
  readonly parameters: Readonly<Record<string, ParameterValue>>;
  /** `null` for a run not finished (after a stop). */
  readonly statistics: RunStatistics | null;
}

/** A walk-forward fold's outcome. */
export interface FoldResult {
  readonly fold: number;
  readonly inSample: StepRange & { readonly best: SearchRow | null };
  /** The in-sample best on the part after it; `null` when the fold did not finish. */
  readonly outOfSample: StepRange & { readonly warmUpSteps: number; readonly statistics: RunStatistics | null };
}

/** What a search found (`runSearch`, printed by `tradeswarm optimize --json`). Deterministic: the same search gives the same result, whatever the worker count. */
export interface SearchResult {
  readonly metric: Metric;
  readonly direction: 'maximize' | 'minimize';
  readonly parameters: ReadonlyArray<{ readonly name: string; readonly values: readonly ParameterValue[] }>;
  readonly constraints: readonly string[];
  /** Combinations of the grid, and how many the constraints kept. */
  readonly gridSize: number;
  readonly combinations: number;
  /** Time steps of the data searched. */
  readonly timeSteps: number;
  /** Every kept combination on all the data, in grid order (the last parameter varying fastest), with its rank. */
  readonly rows: readonly SearchRow[];
  readonly walkForward: {
    readonly mode: WalkForwardMode;
    readonly folds: readonly FoldResult[];
    /** The out-of-sample parts joined (each part's returns compounded after the previous part's); `null` unless every fold finished. */
    readonly outOfSample: RunStatistics | null;
  } | null;
  /** Runs finished, and planned. */
  readonly runsDone: number;
  readonly runs: number;
  /** Whether the signal stopped the search before every run finished. */
  readonly stopped: boolean;
}
