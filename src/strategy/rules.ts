/**
 * What every strategy here shares: option checks that name the field, and the one position rule
 * (exit, then enter when flat) that turns a bar's signals into intents. Internal to the domain, but
 * for the option checks the decision stages share (`requireBars`, `optionalBoolean`).
 */
import { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type ExitsOptions, compileExits } from './exits.js';
import { type OwnSnapshotSpec, type RestorableStrategy, type StrategyState, registerRestorable, snapshotMethods } from './snapshot.js';
import type { Intent, StrategyContext, StrategySizer, StrategyWarmUp } from './strategy.js';

/** No intents (shared, frozen). */
export const NONE: readonly Intent[] = Object.freeze([]);

/** @throws InvalidInputError naming `field` when `value` is not a non-empty string. */
export function requireSymbol(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidInputError(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** @throws InvalidInputError naming `field` when `value` is not a whole number of bars >= `min`. */
export function requireBars(field: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidInputError(field, `must be a whole number of bars >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** @throws InvalidInputError naming `field` when `value` is not a finite number. */
export function requireFinite(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidInputError(field, `must be a finite number, got ${String(value)}`);
  return value;
}

/** @throws InvalidInputError naming `field` when `value` is not a finite number > 0. */
export function requirePositive(field: string, value: unknown): number {
  if (requireFinite(field, value) <= 0) throw new InvalidInputError(field, `must be > 0, got ${String(value)}`);
  return value as number;
}

/** @throws InvalidInputError naming `field` when `value` is not a finite number >= 0. */
export function requireNonNegative(field: string, value: unknown): number {
  if (requireFinite(field, value) < 0) throw new InvalidInputError(field, `must be >= 0, got ${String(value)}`);
  return value as number;
}

/**
 * Checks that a band `width` (in population standard deviations) can be crossed by the newest of a
 * window of `windowSize` values: none of n values lies further than √(n − 1) standard deviations
 * from their mean (Samuelson's inequality), so a band that wide would never let a strategy enter.
 * @param countField the option that sets `windowSize`; `unit` names what the window holds.
 * @throws InvalidInputError naming `field` when `width >= √(windowSize − 1)`.
 */
export function requireReachableBand(field: string, width: number, countField: string, windowSize: number, unit: { one: string; many: string }): number {
  const reach = Math.sqrt(windowSize - 1);
  if (width >= reach) {
    throw new InvalidInputError(
      field,
      `must be < √(${countField} − 1) = √${windowSize - 1} ≈ ${reach.toFixed(3)}: no ${unit.one} of a window of ${windowSize} ${unit.many} is further than that many standard deviations from their mean, so the strategy could never enter, got ${width}`,
    );
  }
  return width;
}

/**
 * Which sides a one-symbol strategy opens positions on: `long` (buys on its long signal), `short`
 * (sells short on its short signal) or `both` (either; an opposite signal while holding reverses:
 * it closes the holding and opens the other side on the same bar).
 */
export const Side = { long: 'long', short: 'short', both: 'both' } as const;
export type Side = (typeof Side)[keyof typeof Side];

/** The sides, in the order errors list them. */
export const SIDES: readonly Side[] = Object.freeze(Object.values(Side));

/** `value`, or `long` when undefined. @throws InvalidInputError naming `side` when it is not one of {@link SIDES}. */
export function optionalSide(value: unknown): Side {
  if (value === undefined) return Side.long;
  if (!SIDES.includes(value as Side)) throw new InvalidInputError('side', `must be one of ${SIDES.map((side) => `'${side}'`).join(', ')}, got ${JSON.stringify(value)}`);
  return value as Side;
}

/** `value`, or `fallback` when undefined. @throws InvalidInputError naming `field` when it is not a boolean. */
export function optionalBoolean(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidInputError(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** @throws InvalidInputError naming `sizing` when it has no `quantity(price, equity)`. */
export function requireSizer(sizing: unknown): StrategySizer {
  if (typeof (sizing as Partial<StrategySizer> | undefined)?.quantity !== 'function') {
    throw new InvalidInputError('sizing', 'must be a sizer with quantity(price, equity)');
  }
  return sizing as StrategySizer;
}

/** The explicit name, checked, or `fallback`. */
export function strategyName(name: unknown, fallback: string): string {
  return name === undefined ? fallback : requireSymbol('name', name);
}

/** Which way a position, or a two-leg book (by its first leg), points. */
export type Holding = 'long' | 'short' | 'flat';

/** What a strategy's indicators say on one bar. Each rule reads only the ones for the current holding. */
export interface Signals {
  readonly enterLong: boolean;
  readonly exitLong: boolean;
  readonly enterShort: boolean;
  readonly exitShort: boolean;
}

/** No signal at all (shared, frozen): what most bars say. */
export const NO_SIGNALS: Signals = Object.freeze({ enterLong: false, exitLong: false, enterShort: false, exitShort: false });

/** What to do on a bar: close what is held, then open a side (or not). */
export interface Decision {
  readonly exit: boolean;
  readonly enter: 'long' | 'short' | undefined;
}

/**
 * The position rule every strategy here follows:
 * 1. long and `exitLong`, or short and `exitShort`: exit the whole holding.
 * 2. then, if flat (before or after that exit): enter long on `enterLong` when `side` is `long` or
 *    `both`, else enter short on `enterShort` when `side` is `short` or `both`.
 * So an exit and an opposite entry can happen on the same bar (a reversal); a holding is never added to.
 */
export function decide(holding: Holding, signals: Signals, side: Side): Decision {
  const exit = (holding === 'long' && signals.exitLong) || (holding === 'short' && signals.exitShort);
  if (holding !== 'flat' && !exit) return { exit, enter: undefined };
  const enter = side !== Side.short && signals.enterLong ? 'long' : side !== Side.long && signals.enterShort ? 'short' : undefined;
  return { exit, enter };
}

export function holdingOf(position: number): Holding {
  return position > 0 ? 'long' : position < 0 ? 'short' : 'flat';
}

/** Options of {@link signalStrategy}: a one-symbol strategy defined by its signals. */
export interface SignalStrategySpec {
  readonly name: string;
  readonly symbol: string;
  readonly sizing: StrategySizer;
  readonly side: Side;
  /** How many bars `signals` needs before its first answer, and why. */
  readonly warmUp: StrategyWarmUp;
  /** Feeds the symbol's bar to the indicators; `undefined` while they warm up (no trade). */
  readonly signals: (bar: Bar) => Signals | undefined;
  /**
   * Its spec as its snapshots name it: `type` and the parameters that shape its state (periods);
   * `name` and `symbols` are added.
   */
  readonly snapshotSpec: OwnSnapshotSpec;
  /** What `signals` keeps (its indicators), saved and restored for snapshots. */
  readonly state: StrategyState;
  /** Exits every entry carries (see {@link signalStrategy}). @default none */
  readonly exits?: ExitsOptions;
}

/** The strategy's own state with the exits' ATRs under `exits`, when it has any. */
function withExitsState(state: StrategyState, exits: NonNullable<ReturnType<typeof compileExits>>): StrategyState {
  return {
    save: () => ({ ...state.save(), exits: exits.save() }),
    prepare: (reader) => {
      const own = state.prepare(reader);
      const atr = exits.prepare(reader.object('exits'));
      return () => {
        own();
        atr();
      };
    },
  };
}

/**
 * A one-symbol strategy: on each of its symbol's bars, {@link decide} on `signals(bar)`, then
 * - exit long: market sell of the whole position, intent `exit-long`; exit short: market buy of it, `exit-short`
 *   (a reversal answers the exit first, then the entry: two orders of the same side);
 * - enter: market buy (`enter-long`) or sell (`enter-short`) of `sizing.quantity(close, equity)`
 *   units, none when that is not > 0.
 * With `exits`, every entry carries them (`Intent.exits`), distances in ATRs turned into points
 * with the ATR as of this bar; while such an ATR has no value yet, no entry is made, and the
 * strategy's warm-up is the ATR's when that is longer. A runner cancels the open exits of an entry
 * when the strategy closes the position itself (`exit-long`, `exit-short`), so an exit and a
 * signal's close never both fill.
 */
export function signalStrategy(spec: SignalStrategySpec): RestorableStrategy {
  const { name, symbol, sizing, side, signals } = spec;
  const exits = compileExits(spec.exits);
  const measured = exits?.update;
  const state = measured === undefined ? spec.state : withExitsState(spec.state, exits as NonNullable<typeof exits>);
  const snapshotSpec = measured === undefined ? spec.snapshotSpec : { ...spec.snapshotSpec, exitsAtrPeriods: [...(exits as NonNullable<typeof exits>).atrPeriods] };
  const warmUp = exits?.warmUp !== undefined && exits.warmUp.bars > spec.warmUp.bars ? exits.warmUp : spec.warmUp;
  const { prepare, snapshot, restore } = snapshotMethods(name, [symbol], snapshotSpec, state);
  const strategy: RestorableStrategy = Object.freeze({
    name,
    symbols: Object.freeze([symbol]),
    warmUp: Object.freeze({ ...warmUp }),
    snapshot,
    restore,
    onBar(bar: Bar, context: StrategyContext): readonly Intent[] {
      if (bar.symbol !== symbol) return NONE;
      // Only strategies with exits in ATRs do work here.
      if (measured !== undefined) measured(bar);
      const now = signals(bar);
      // Most bars signal nothing, and nothing is then decided whatever is held.
      if (now === undefined || !(now.enterLong || now.exitLong || now.enterShort || now.exitShort)) return NONE;
      const position = context.position;
      const { exit, enter } = decide(holdingOf(position), now, side);
      if (!exit && enter === undefined) return NONE;
      const intents: Intent[] = [];
      if (exit) {
        intents.push(
          position > 0
            ? { symbol, side: 'sell', quantity: position, type: 'market', intent: 'exit-long' }
            : { symbol, side: 'buy', quantity: -position, type: 'market', intent: 'exit-short' },
        );
      }
      if (enter !== undefined) {
        const quantity = sizing.quantity(bar.close, context.equity);
        const bracket = exits?.current();
        // With exits, no entry while an ATR they are measured in has no value yet.
        if (quantity > 0 && (exits === undefined || bracket !== undefined)) {
          const attached = bracket === undefined ? {} : { exits: bracket };
          intents.push(
            enter === 'long'
              ? { symbol, side: 'buy', quantity, type: 'market', intent: 'enter-long', ...attached }
              : { symbol, side: 'sell', quantity, type: 'market', intent: 'enter-short', ...attached },
          );
        }
      }
      return intents;
    },
  });
  return registerRestorable(strategy, prepare);
}
