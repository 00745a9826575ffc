import { IncompatibleSnapshotError, InvalidInputError, type JsonObject, type JsonValue, SnapshotProblem } from '../core/index.js';
import { settledCurve } from '../portfolio/index.js';
import { settledOrders } from '../venue/index.js';
import type { TradingSessionSnapshot } from './session.js';

/** One append-only part of a session snapshot's state: where it sits, and how many of its items, from the first, can no longer change. */
interface HistoryPartSpec {
  readonly path: readonly string[];
  readonly settled: (items: readonly JsonValue[], state: JsonObject) => number;
}

const CURVE = ['portfolio', 'curve'] as const;

/** Items of the curve's `points` and `segments` are numbers: 4 a point, 4 a segment. */
const curveOf = (state: JsonObject): ReturnType<typeof settledCurve> => settledCurve(listAt(state, [...CURVE, 'points']) ?? [], listAt(state, [...CURVE, 'segments']) ?? []);

const everyItem = (items: readonly JsonValue[]): number => items.length;

/**
 * The parts of a trading session snapshot's state that only grow, with its whole history: every
 * order the venue knows (terminal ones too), the portfolio's closed trades and equity curve, the
 * session's fills and rejections. The rest of the state (books, positions, marks, brackets, the last
 * bars…) is a few hundred bytes whatever the session's age.
 */
const PARTS = {
  orders: { path: ['venue', 'orders'], settled: settledOrders },
  trades: { path: ['portfolio', 'trades'], settled: everyItem },
  points: { path: [...CURVE, 'points'], settled: (_, state) => curveOf(state).points },
  segments: { path: [...CURVE, 'segments'], settled: (_, state) => curveOf(state).segments },
  fills: { path: ['fills'], settled: everyItem },
  rejections: { path: ['rejections'], settled: everyItem },
} as const satisfies Record<string, HistoryPartSpec>;

/** An append-only part of a session snapshot's state (see {@link splitSessionSnapshot}). */
export type SessionHistoryPart = keyof typeof PARTS;

const PART_NAMES = Object.keys(PARTS) as SessionHistoryPart[];

/** How many items of each append-only part, from the first, the history chunks stored so far hold. */
export type SessionHistoryMark = Readonly<Record<SessionHistoryPart, number>>;

/** What is held before the first chunk: nothing. */
export const NO_SESSION_HISTORY: SessionHistoryMark = Object.freeze(Object.fromEntries(PART_NAMES.map((name) => [name, 0])) as Record<SessionHistoryPart, number>);

/**
 * Items of each append-only part that can no longer change, after those of the chunks before it
 * (`from`: what they held). Plain JSON.
 */
export interface SessionHistoryChunk {
  readonly from: SessionHistoryMark;
  readonly items: Readonly<Record<SessionHistoryPart, readonly JsonValue[]>>;
}

/** A session snapshot split by {@link splitSessionSnapshot}. */
export interface SplitSessionSnapshot {
  /** The snapshot without what the chunks hold: its append-only parts keep only their items from `held` on. */
  readonly live: TradingSessionSnapshot;
  /** What became settled since the mark split at; `undefined` when nothing did. */
  readonly chunk: SessionHistoryChunk | undefined;
  /** What the chunks hold with this one: the mark to split the session's next snapshot at. */
  readonly held: SessionHistoryMark;
}

/**
 * Splits a trading session snapshot (`TradingSession.snapshot()`) into its live state and the
 * history settled since an earlier snapshot of the same session was split (`held`: what that split
 * gave; {@link NO_SESSION_HISTORY} for the first). Its size then follows the session's open orders,
 * not its age: a long-running deployment stores each item of its history once, in the chunk of the
 * snapshot it settled by, where a whole snapshot rewrote all of it every time. An order that can
 * still change keeps those after it live (see `settledOrders`): correct, only less compact. A part
 * the snapshot lacks stays as it is (nothing is held of it). Pure: `snapshot` is not changed.
 * {@link joinSessionSnapshot} puts the pieces back together.
 * @throws InvalidInputError when `held` holds more of a part than the snapshot has settled: it was
 *   not split from an earlier snapshot of this session.
 */
export function splitSessionSnapshot(snapshot: TradingSessionSnapshot, held: SessionHistoryMark = NO_SESSION_HISTORY): SplitSessionSnapshot {
  const original = snapshot.state;
  let state = original;
  const next: Record<string, number> = {};
  const items: Record<string, readonly JsonValue[]> = {};
  let settledAny = false;
  for (const name of PART_NAMES) {
    const { path, settled: settledOf } = PARTS[name] as HistoryPartSpec;
    const list = listAt(original, path);
    const settled = list === undefined ? 0 : settledOf(list, original);
    if (settled < held[name]) {
      throw new InvalidInputError(`held.${name}`, `holds ${held[name]} items of state.${path.join('.')}, but this snapshot has settled ${settled}: split a later snapshot of the session the mark was made from, or split from NO_SESSION_HISTORY`);
    }
    next[name] = settled;
    items[name] = list === undefined ? [] : list.slice(held[name], settled);
    if (list !== undefined) state = replaceAt(state, path, list.slice(settled));
    settledAny ||= settled > held[name];
  }
  return {
    live: { ...snapshot, state },
    chunk: settledAny ? { from: held, items: items as SessionHistoryChunk['items'] } : undefined,
    held: next as SessionHistoryMark,
  };
}

/**
 * The snapshot {@link splitSessionSnapshot} split: `live` (the latest split's) with every chunk the
 * splits before it gave, in order, that together hold `held` (the latest split's mark). Deep-equal to
 * the session's snapshot then. Pure.
 * @throws {IncompatibleSnapshotError} when a chunk is missing, repeated or out of order, or the
 *   chunks do not hold what `held` says: restore from a whole snapshot, or replay the steps.
 */
export function joinSessionSnapshot(live: TradingSessionSnapshot, chunks: readonly SessionHistoryChunk[], held: SessionHistoryMark): TradingSessionSnapshot {
  let state = live.state;
  for (const name of PART_NAMES) {
    const { path } = PARTS[name];
    const joined: JsonValue[] = [];
    chunks.forEach((chunk, i) => {
      if (chunk.from[name] !== joined.length) broken(`chunk ${i} starts at item ${chunk.from[name]} of state.${path.join('.')}, but the chunks before it hold ${joined.length}: a chunk is missing, repeated or out of order`);
      for (const item of chunk.items[name]) joined.push(item);
    });
    if (joined.length !== held[name]) broken(`the chunks hold ${joined.length} items of state.${path.join('.')}, the live state says ${held[name]}: a chunk is missing`);
    const rest = listAt(state, path);
    if (rest === undefined) {
      if (joined.length > 0) broken(`the live state has no state.${path.join('.')}, the chunks hold ${joined.length} items of it`);
      continue;
    }
    state = replaceAt(state, path, joined.length === 0 ? rest : [...joined, ...rest]);
  }
  return { ...live, state };
}

function broken(detail: string): never {
  throw new IncompatibleSnapshotError('trading session', SnapshotProblem.invalid, `its history chunks do not fit: ${detail}`);
}

/** The array at `path` in `object`, if there is one. */
function listAt(object: JsonObject, path: readonly string[]): readonly JsonValue[] | undefined {
  let value: JsonValue | undefined = object;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as JsonObject)[key];
  }
  return Array.isArray(value) ? (value as readonly JsonValue[]) : undefined;
}

/** `object` with `value` at `path` (which leads to an existing value), copied along the path only. */
function replaceAt(object: JsonObject, path: readonly string[], value: JsonValue): JsonObject {
  const [key, ...rest] = path as [string, ...string[]];
  return { ...object, [key]: rest.length === 0 ? value : replaceAt(object[key] as JsonObject, rest, value) };
}
