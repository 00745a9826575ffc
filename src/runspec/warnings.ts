import { type PortfolioAllocatorOptions, Weighting, compilePortfolioAllocatorOptions } from '../decision/index.js';
import type { Strategy } from '../strategy/index.js';

/**
 * A run that will not do what its options say, found before the first bar: a warm-up longer than
 * the data. The run goes on (its report is still exact); the warning says why it trades less.
 */
export interface RunWarning {
  /** Where in the options: `strategies[0]`, or `allocator`. */
  readonly source: string;
  /** The strategy's name (absent for the allocator). */
  readonly strategy?: string;
  /** The option that sets the warm-up, e.g. `slowPeriod`, and its value. */
  readonly field: string;
  readonly value: number;
  /** Bars (of each symbol concerned) up to and including the first on which it can act. */
  readonly barsNeeded: number;
  /** The fewest bars the data has of those symbols. */
  readonly barsAvailable: number;
  /** The warning in words, as the CLI prints it. */
  readonly message: string;
}

/**
 * Warnings for warm-ups longer than the data: a strategy that cannot decide even once, and an
 * inverse-volatility allocator whose weights never leave equal. Run once, before the bar loop.
 * @param barsOf the bars of a symbol in the run's data (0 for none).
 */
export function warmUpWarnings(
  strategies: readonly Strategy[],
  allocator: Omit<PortfolioAllocatorOptions, 'strategies'> | undefined,
  barsOf: (symbol: string) => number,
): RunWarning[] {
  const warnings: RunWarning[] = [];
  strategies.forEach((strategy, i) => {
    const { warmUp, symbols } = strategy;
    if (warmUp === undefined || symbols === undefined || symbols.length === 0) return;
    const { bars: available, text: has } = fewestBars(symbols, barsOf);
    if (available >= warmUp.bars) return;
    const source = `strategies[${i}]`;
    warnings.push({
      source,
      strategy: strategy.name,
      field: warmUp.field,
      value: warmUp.value,
      barsNeeded: warmUp.bars,
      barsAvailable: available,
      message:
        `${source} ${strategy.name} cannot trade: ${warmUp.field} ${warmUp.value} needs ${warmUp.bars} bars of ${symbols.join(' and ')} before its first decision, ` +
        `and the data has ${has}; lower ${warmUp.field} or use more data`,
    });
  });
  if (allocator?.weighting === Weighting.inverseVolatility) {
    const config = compilePortfolioAllocatorOptions({ ...allocator, strategies: strategies.map(({ name, symbols }) => ({ name, symbols: symbols ?? [] })) });
    const symbols = [...new Set(strategies.flatMap((strategy) => strategy.symbols ?? []))];
    // A symbol's volatility needs `lookbackBars` returns, so one close more.
    const needed = config.lookbackBars + 1;
    const { bars: available, text: has } = fewestBars(symbols, barsOf);
    if (symbols.length > 0 && available < needed) {
      warnings.push({
        source: 'allocator',
        field: 'lookbackBars',
        value: config.lookbackBars,
        barsNeeded: needed,
        barsAvailable: available,
        message:
          `allocator: lookbackBars ${config.lookbackBars} needs ${needed} bars of every strategy's symbols before inverse-volatility weights apply, ` +
          `and the data has ${has}; the weights stay equal for the whole run; lower lookbackBars or use more data`,
      });
    }
  }
  return warnings;
}

/** The fewest bars any of `symbols` has, and that in words (`300`, or `200 of KO` when the symbols differ). */
function fewestBars(symbols: readonly string[], barsOf: (symbol: string) => number): { bars: number; text: string } {
  const counts = symbols.map(barsOf);
  const bars = Math.min(...counts);
  const differ = counts.some((count) => count !== bars);
  return { bars, text: differ ? `${bars} of ${symbols[counts.indexOf(bars)] as string}` : String(bars) };
}
