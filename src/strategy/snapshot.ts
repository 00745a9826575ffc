/**
 * Snapshots of strategies: every strategy built here ({@link RestorableStrategy}) saves its state as
 * JSON and restores it exactly, so an agent resumes from its last checkpoint instead of replaying
 * every step from the first.
 */
import { type JsonObject, type JsonValue, type Snapshot, type SnapshotReader, openSnapshot } from '../core/index.js';
import { type StreamingIndicator, prepareIndicatorState, saveIndicatorState } from './indicators.js';
import type { Strategy } from './strategy.js';

/** The format version of strategy snapshots this build writes and reads. */
const STRATEGY_SNAPSHOT_VERSION = 1;

/** The format version of {@link snapshotStrategies}' snapshots. */
const STRATEGIES_SNAPSHOT_VERSION = 1;

/**
 * A snapshot of one strategy: `kind: 'strategy'`; `spec` what shapes its state: its `type`, `name`
 * and `symbols` and the parameters of its indicators and windows (periods, lookbacks, band width);
 * `state` what its indicators and windows hold. Thresholds and sizing only read that state, so they
 * are not in `spec`: a snapshot restores into a strategy whose thresholds changed exactly as a
 * replay from the first bar would rebuild it.
 */
export type StrategySnapshot = Snapshot;

/** A snapshot of several strategies ({@link snapshotStrategies}): `kind: 'strategies'`, theirs in order. */
export type StrategiesSnapshot = Snapshot;

/**
 * A strategy whose state can be saved as JSON and restored exactly: every strategy that
 * `buildStrategy` and the strategy functions of this folder make.
 */
export interface RestorableStrategy extends Strategy {
  /** Its state as plain JSON (see {@link StrategySnapshot}): the values it keeps, never the bars that made them. */
  snapshot(): StrategySnapshot;
  /**
   * Sets its state to what `snapshot` saved, whatever it held before: fed the bars (and accounts) that
   * followed, it then answers exactly the intents the strategy that made the snapshot answered. All
   * or nothing.
   * @throws {IncompatibleSnapshotError} when the snapshot is of another format version, of a
   *   strategy of another spec (it names the fields), or damaged; the strategy is then unchanged.
   */
  restore(snapshot: JsonValue): void;
}

/** How a strategy of this folder keeps its state. */
export interface StrategyState {
  save(): JsonObject;
  /** Reads a saved state, changing nothing; the returned function puts it in place. */
  prepare(state: SnapshotReader): () => void;
}

/** The state of a strategy that keeps indicators only, saved under their names. */
export function indicatorsState(indicators: Readonly<Record<string, StreamingIndicator<never, unknown>>>): StrategyState {
  const entries = Object.entries(indicators);
  return {
    save: () => Object.fromEntries(entries.map(([key, indicator]) => [key, saveIndicatorState(indicator)])),
    prepare: (state) => {
      const commits = entries.map(([key, indicator]) => prepareIndicatorState(indicator, state.object(key)));
      return () => {
        for (const commit of commits) commit();
      };
    },
  };
}

/** Checks a strategy's snapshot against the strategy and reads it, changing nothing; the returned function puts it in place. */
type Prepare = (snapshot: JsonValue) => () => void;

/** The strategies made here, so that several restore all or nothing. */
const preparers = new WeakMap<object, Prepare>();

/**
 * What a strategy of this folder says of itself for its snapshots' spec: its `type` and the
 * parameters that shape its state (periods, lookbacks); its name and symbols come with it.
 */
export type OwnSnapshotSpec = { readonly type: string; readonly [parameter: string]: JsonValue };

/** The `snapshot` and `restore` methods of a strategy, whose state `state` keeps. */
export function snapshotMethods(
  name: string,
  symbols: readonly string[],
  own: OwnSnapshotSpec,
  state: StrategyState,
): Pick<RestorableStrategy, 'snapshot' | 'restore'> & { readonly prepare: Prepare } {
  const { type, ...parameters } = own;
  const spec: JsonObject = { type, name, symbols: [...symbols], ...parameters };
  const subject = `strategy ${JSON.stringify(name)}`;
  const prepare: Prepare = (snapshot) => state.prepare(openSnapshot(snapshot, { subject, kind: 'strategy', version: STRATEGY_SNAPSHOT_VERSION, spec }));
  return {
    prepare,
    snapshot: () => ({ kind: 'strategy', version: STRATEGY_SNAPSHOT_VERSION, spec, state: state.save() }),
    restore: (snapshot) => prepare(snapshot)(),
  };
}

/** Lets {@link restoreStrategies} restore `strategy` all or nothing with others. */
export function registerRestorable<T extends RestorableStrategy>(strategy: T, prepare: Prepare): T {
  preparers.set(strategy, prepare);
  return strategy;
}

/**
 * The snapshot of several strategies (an agent's), in order: `spec` their names, `state` each one's
 * own snapshot. What {@link restoreStrategies} takes.
 */
export function snapshotStrategies(strategies: readonly RestorableStrategy[]): StrategiesSnapshot {
  return {
    kind: 'strategies',
    version: STRATEGIES_SNAPSHOT_VERSION,
    spec: { names: strategies.map((strategy) => strategy.name) },
    state: { strategies: strategies.map((strategy) => strategy.snapshot()) },
  };
}

/**
 * Restores strategies built from the same specs, in the same order, from a
 * {@link snapshotStrategies} snapshot: all of them or, on any error, none (a strategy that was not
 * made in this folder restores last, on its own).
 * @throws {IncompatibleSnapshotError} when the snapshot is of another format version, holds other
 *   strategies (another count, order, name, type, symbol or period: it names the strategy and the
 *   field), or is damaged.
 */
export function restoreStrategies(strategies: readonly RestorableStrategy[], snapshot: JsonValue): void {
  const names = strategies.map((strategy) => strategy.name);
  const state = openSnapshot(snapshot, { subject: `the strategies (${names.join(', ')})`, kind: 'strategies', version: STRATEGIES_SNAPSHOT_VERSION, spec: { names } });
  const saved = state.array('strategies', { min: strategies.length, max: strategies.length });
  const commits = strategies.map((strategy, i) => {
    const own = saved.raw(i) as JsonValue;
    const prepare = preparers.get(strategy);
    return prepare === undefined ? () => strategy.restore(own) : prepare(own);
  });
  for (const commit of commits) commit();
}
