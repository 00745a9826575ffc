/** The machinery shared by the two-leg strategies ({@link pairs}, {@link crossVenueArbitrage}). Internal. */
import { InvalidInputError, toJsonNumber } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type Holding, NONE, Side, type Signals, decide } from './rules.js';
import { type OwnSnapshotSpec, type RestorableStrategy, type StrategyState, registerRestorable, snapshotMethods } from './snapshot.js';
import type { Intent, StrategyContext, StrategySizer, StrategyWarmUp } from './strategy.js';

/** Slack when rounding the second leg down to whole units (as the portfolio's sizers do). */
const WHOLE_UNIT_TOLERANCE = 1e-9;

/** What a two-leg strategy's indicators say at one time step. */
export interface TwoLegSignals {
  /** Long = long A and short B ("long the spread"); short = the reverse. */
  readonly signals: Signals;
  /** Units of B per unit of A; entries need it finite and > 0. */
  readonly hedgeRatio: number;
}

export interface TwoLegSpec {
  readonly name: string;
  readonly symbolA: string;
  readonly symbolB: string;
  readonly sizing: StrategySizer;
  /** Round the B leg down to whole units. */
  readonly wholeUnits: boolean;
  /** Time steps (with both legs) `signals` needs before its first answer, and why; none when it needs no history. */
  readonly warmUp?: StrategyWarmUp;
  /** Called once per time step at which both legs have a bar; `undefined` while warming up. */
  readonly signals: (closeA: number, closeB: number) => TwoLegSignals | undefined;
  /**
   * Its spec as its snapshots name it: `type` and the parameters that shape its state (lookbacks);
   * `name` and `symbols` are added.
   */
  readonly snapshotSpec: OwnSnapshotSpec;
  /** What `signals` keeps, saved and restored for snapshots; none when it keeps nothing. */
  readonly state?: StrategyState;
}

/**
 * A strategy on two symbols that acts only when both have a bar at the same time: bars of one time
 * step arrive one symbol at a time, so it remembers the first and acts on the second (whichever
 * symbol that is). Then, with `posA`, `posB` from `context.positionOf`:
 * - holding: long when `posA > 0` (or `posA = 0` and `posB < 0`), short when `posA < 0` (or
 *   `posA = 0` and `posB > 0`), else flat;
 * - {@link decide} with shorting allowed (both directions are always traded);
 * - exit: market orders closing every non-zero leg, intent `exit-long-spread` / `exit-short-spread`;
 * - enter (when `hedgeRatio > 0`): `qA = sizing.quantity(closeA + hedgeRatio × closeB, equity)`
 *   (the sizer prices one unit of the whole combination, so its budget is the gross notional of both
 *   legs) and `qB = hedgeRatio × qA` (rounded down with `wholeUnits`); long buys qA of A and sells qB
 *   of B (`enter-long-spread`), short the reverse (`enter-short-spread`); none when a leg is 0.
 */
export function twoLegStrategy(spec: TwoLegSpec): RestorableStrategy {
  const { name, symbolA, symbolB, sizing, wholeUnits, signals, warmUp } = spec;
  let timeA = Number.NaN;
  let timeB = Number.NaN;
  let closeA = 0;
  let closeB = 0;
  const { prepare, snapshot, restore } = snapshotMethods(
    name,
    [symbolA, symbolB],
    spec.snapshotSpec,
    {
      // The last bar of each leg (its time, NaN before any), so that a step's second bar finds the first.
      save: () => ({ timeA: toJsonNumber(timeA), timeB: toJsonNumber(timeB), closeA: toJsonNumber(closeA), closeB: toJsonNumber(closeB), signals: spec.state?.save() ?? null }),
      prepare: (state) => {
        const saved = { timeA: state.number('timeA'), timeB: state.number('timeB'), closeA: state.number('closeA'), closeB: state.number('closeB') };
        const restoreSignals = spec.state?.prepare(state.object('signals'));
        return () => {
          ({ timeA, timeB, closeA, closeB } = saved);
          restoreSignals?.();
        };
      },
    },
  );
  const strategy: RestorableStrategy = Object.freeze({
    name,
    symbols: Object.freeze([symbolA, symbolB]),
    ...(warmUp === undefined ? {} : { warmUp: Object.freeze({ ...warmUp }) }),
    snapshot,
    restore,
    onBar(bar: Bar, context: StrategyContext): readonly Intent[] {
      if (bar.symbol === symbolA) {
        timeA = bar.timeMs;
        closeA = bar.close;
      } else if (bar.symbol === symbolB) {
        timeB = bar.timeMs;
        closeB = bar.close;
      } else {
        return NONE;
      }
      if (timeA !== timeB) return NONE;
      const now = signals(closeA, closeB);
      if (now === undefined) return NONE;
      const positionOf = context.positionOf;
      if (typeof positionOf !== 'function') {
        throw new InvalidInputError('context.positionOf', `is required: ${name} trades two symbols and must see both positions`);
      }
      const positionA = positionOf(symbolA);
      const positionB = positionOf(symbolB);
      const holding: Holding =
        positionA > 0 || (positionA === 0 && positionB < 0) ? 'long' : positionA < 0 || (positionA === 0 && positionB > 0) ? 'short' : 'flat';
      const { exit, enter } = decide(holding, now.signals, Side.both);
      const intents: Intent[] = [];
      if (exit) {
        const intent = `exit-${holding}-spread`;
        for (const [symbol, position] of [[symbolA, positionA], [symbolB, positionB]] as const) {
          if (position !== 0) intents.push({ symbol, side: position > 0 ? 'sell' : 'buy', quantity: Math.abs(position), type: 'market', intent });
        }
      }
      const hedgeRatio = now.hedgeRatio;
      if (enter !== undefined && Number.isFinite(hedgeRatio) && hedgeRatio > 0) {
        const quantityA = sizing.quantity(closeA + hedgeRatio * closeB, context.equity);
        const exactB = hedgeRatio * quantityA;
        const quantityB = wholeUnits ? Math.floor(exactB + WHOLE_UNIT_TOLERANCE) : exactB;
        if (quantityA > 0 && quantityB > 0) {
          const intent = `enter-${enter}-spread`;
          const buyA = enter === 'long';
          intents.push({ symbol: symbolA, side: buyA ? 'buy' : 'sell', quantity: quantityA, type: 'market', intent });
          intents.push({ symbol: symbolB, side: buyA ? 'sell' : 'buy', quantity: quantityB, type: 'market', intent });
        }
      }
      return intents;
    },
  });
  return registerRestorable(strategy, prepare);
}

/** Checks that the two legs are distinct symbols. */
export function requireDistinctLegs(symbolA: string, symbolB: string): void {
  if (symbolA === symbolB) throw new InvalidInputError('symbolB', `must differ from symbolA (${symbolA}), got ${symbolB}`);
}
