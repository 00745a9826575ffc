import { IncompatibleSnapshotError, InvalidInputError, type JsonObject, type JsonValue, SnapshotProblem } from '../core/index.js';
import { settledCurve } from '../portfolio/index.js';
import { settledOrders } from '../venue/index.js';
import type { TradingSessionSnapshot } from './session.js';

/**
 * One append-only part of a session snapshot's state: where it sits, and which of its items can no
 * longer change: how many from the first, or their indices (in order).
 */
interface HistoryPartSpec {
  readonly path: readonly string[];
  readonly settled: (items: readonly JsonValue[], state: JsonObject) => number | readonly number[];
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

/**
 * Indices of a part's items, as ranges `[start, end)`: sorted, apart (never touching), none empty.
 * Plain JSON.
 */
export type IndexRanges = ReadonlyArray<readonly [number, number]>;

/**
 * Which items of each append-only part the history chunks stored so far hold: a count, when they are
 * the first so many (as every part's are, but for orders once one rests while later ones settle), or
 * their index ranges.
 */
export type SessionHistoryMark = Readonly<Record<SessionHistoryPart, number | IndexRanges>>;

/** What is held before the first chunk: nothing. */
export const NO_SESSION_HISTORY: SessionHistoryMark = Object.freeze(Object.fromEntries(PART_NAMES.map((name) => [name, 0])) as Record<SessionHistoryPart, number>);

/**
 * Items of each append-only part that can no longer change, beyond those of the chunks before it
 * (`from`: what they held), in index order; `at`, where a part's are not the items right after a
 * count `from` holds, gives their indices. Plain JSON.
 */
export interface SessionHistoryChunk {
  readonly from: SessionHistoryMark;
  readonly items: Readonly<Record<SessionHistoryPart, readonly JsonValue[]>>;
  readonly at?: Readonly<Partial<Record<SessionHistoryPart, IndexRanges>>>;
}

/** A session snapshot split by {@link splitSessionSnapshot}. */
export interface SplitSessionSnapshot {
  /** The snapshot without what the chunks hold: its append-only parts keep only the items `held` does not hold, in order. */
  readonly live: TradingSessionSnapshot;
  /** What became settled since the mark split at; `undefined` when nothing did. */
  readonly chunk: SessionHistoryChunk | undefined;
  /** What the chunks hold with this one: the mark to split the session's next snapshot at. */
  readonly held: SessionHistoryMark;
}

/** `held` as ranges (a count `n` is `[[0, n)]`). */
function rangesOf(held: number | IndexRanges): IndexRanges {
  if (typeof held !== 'number') return held;
  return held > 0 ? [[0, held]] : [];
}

/** Sorted indices as ranges. */
function rangesOfIndices(indices: readonly number[]): IndexRanges {
  const ranges: Array<[number, number]> = [];
  for (const index of indices) {
    const last = ranges.at(-1);
    if (last !== undefined && last[1] === index) last[1] = index + 1;
    else ranges.push([index, index + 1]);
  }
  return ranges;
}

/** `ranges` as a mark: a count when they are the first so many (a mark of old and of most parts), else themselves. */
function markOf(ranges: IndexRanges): number | IndexRanges {
  if (ranges.length === 0) return 0;
  return ranges.length === 1 && ranges[0]![0] === 0 ? ranges[0]![1] : ranges;
}

function sizeOf(ranges: IndexRanges): number {
  return ranges.reduce((size, [start, end]) => size + end - start, 0);
}

function* indicesOf(ranges: IndexRanges): Generator<number> {
  for (const [start, end] of ranges) for (let index = start; index < end; index++) yield index;
}

/**
 * Splits a trading session snapshot (`TradingSession.snapshot()`) into its live state and the
 * history settled since an earlier snapshot of the same session was split (`held`: what that split
 * gave; {@link NO_SESSION_HISTORY} for the first). Its size then follows the session's open orders,
 * not its age: a long-running deployment stores each item of its history once, in the chunk of the
 * snapshot it settled by, where a whole snapshot rewrote all of it every time. An order that rests
 * for long stays live alone: those after it that settle go to the chunks, and the mark names them by
 * their index ranges. A part the snapshot lacks stays as it is (nothing is held of it). Pure:
 * `snapshot` is not changed. {@link joinSessionSnapshot} puts the pieces back together.
 * @throws InvalidInputError when `held` holds an item of a part the snapshot has not settled: it was
 *   not split from an earlier snapshot of this session.
 */
export function splitSessionSnapshot(snapshot: TradingSessionSnapshot, held: SessionHistoryMark = NO_SESSION_HISTORY): SplitSessionSnapshot {
  const original = snapshot.state;
  let state = original;
  const next: Record<string, number | IndexRanges> = {};
  const items: Record<string, readonly JsonValue[]> = {};
  const at: Record<string, IndexRanges> = {};
  let settledAny = false;
  for (const name of PART_NAMES) {
    const { path, settled: settledOf } = PARTS[name] as HistoryPartSpec;
    const list = listAt(original, path);
    const settled = list === undefined ? 0 : settledOf(list, original);
    const before = held[name];
    const refuse = (index: number, count: number): never => {
      throw new InvalidInputError(`held.${name}`, `holds item ${index} of state.${path.join('.')}, which this snapshot has not settled (it has settled ${count} items): split a later snapshot of the session the mark was made from, or split from NO_SESSION_HISTORY`);
    };
    // The first so many settled, and a count held: the new items are those right after it (most parts, most of the time).
    const prefix = typeof settled === 'number' ? settled : settled.length === 0 || settled[settled.length - 1] === settled.length - 1 ? settled.length : undefined;
    if (prefix !== undefined && typeof before === 'number') {
      if (prefix < before) refuse(prefix, prefix);
      next[name] = prefix;
      items[name] = list === undefined ? [] : list.slice(before, prefix);
      if (list !== undefined) state = replaceAt(state, path, list.slice(prefix));
      settledAny ||= prefix > before;
      continue;
    }
    const indices = typeof settled === 'number' ? Array.from({ length: settled }, (_, index) => index) : settled;
    const settledSet = new Set(indices);
    const earlier = new Set(indicesOf(rangesOf(before)));
    for (const index of earlier) if (!settledSet.has(index)) refuse(index, settledSet.size);
    const added = indices.filter((index) => !earlier.has(index));
    next[name] = markOf(rangesOfIndices(indices));
    items[name] = list === undefined ? [] : added.map((index) => list[index] as JsonValue);
    // Where the new items are not the ones right after a count held before, the chunk says where they are.
    const addedRanges = rangesOfIndices(added);
    if (added.length > 0 && !(typeof before === 'number' && addedRanges.length === 1 && addedRanges[0]![0] === before)) at[name] = addedRanges;
    if (list !== undefined) state = replaceAt(state, path, list.filter((_, index) => !settledSet.has(index)));
    settledAny ||= added.length > 0;
  }
  return {
    live: { ...snapshot, state },
    chunk: settledAny ? { from: held, items: items as SessionHistoryChunk['items'], ...(Object.keys(at).length > 0 ? { at } : {}) } : undefined,
    held: next as SessionHistoryMark,
  };
}

/**
 * The snapshot {@link splitSessionSnapshot} split: `live` (the latest split's) with every chunk the
 * splits before it gave, in order, that together hold `held` (the latest split's mark), each item put
 * back at its index. Deep-equal to the session's snapshot then. Pure.
 * @throws {IncompatibleSnapshotError} when a chunk is missing, repeated or out of order, or the
 *   chunks do not hold what `held` says: restore from a whole snapshot, or replay the steps.
 */
export function joinSessionSnapshot(live: TradingSessionSnapshot, chunks: readonly SessionHistoryChunk[], held: SessionHistoryMark): TradingSessionSnapshot {
  let state = live.state;
  for (const name of PART_NAMES) {
    const { path } = PARTS[name];
    const where = `state.${path.join('.')}`;
    let placed: IndexRanges = [];
    const pieces: Array<{ readonly positions: IndexRanges; readonly items: readonly JsonValue[] }> = [];
    // Whether each chunk's items follow the previous chunk's, from the first: then they join in order.
    let inOrder = true;
    chunks.forEach((chunk, i) => {
      const from = chunk.from[name];
      if (!sameRanges(rangesOf(from), placed)) broken(`chunk ${i} follows ${sizeOf(rangesOf(from))} items of ${where}, but the chunks before it hold ${sizeOf(placed)} others: a chunk is missing, repeated or out of order`);
      const list = chunk.items[name];
      const positions: IndexRanges = chunk.at?.[name] ?? (typeof from === 'number' && list.length > 0 ? [[from, from + list.length]] : []);
      if (sizeOf(positions) !== list.length) broken(`chunk ${i} has ${list.length} items of ${where} for ${sizeOf(positions)} places`);
      if (overlap(placed, positions)) broken(`chunk ${i} places items of ${where} that an earlier chunk placed`);
      inOrder &&= positions.length === 0 || (positions.length === 1 && positions[0]![0] === sizeOf(placed) && (placed.length === 0 || placed[0]![0] === 0));
      placed = union(placed, positions);
      pieces.push({ positions, items: list });
    });
    const wanted = rangesOf(held[name]);
    if (!sameRanges(placed, wanted)) broken(`the chunks hold ${sizeOf(placed)} items of ${where}, the live state says ${sizeOf(wanted)}: a chunk is missing`);
    const rest = listAt(state, path);
    const count = sizeOf(placed);
    if (rest === undefined) {
      if (count > 0) broken(`the live state has no ${where}, the chunks hold ${count} items of it`);
      continue;
    }
    if (count === 0) continue;
    const total = count + rest.length;
    if (placed.at(-1)![1] > total) broken(`the chunks place item ${placed.at(-1)![1] - 1} of ${where}, which has ${total} with the live ones`);
    let whole: JsonValue[];
    if (inOrder && placed.length === 1 && placed[0]![0] === 0) {
      // The first so many: the chunks' items in order, then the live ones.
      whole = [];
      for (const piece of pieces) for (const item of piece.items) whole.push(item);
      for (const item of rest) whole.push(item);
    } else {
      whole = new Array<JsonValue>(total);
      for (const { positions, items } of pieces) {
        let k = 0;
        for (const index of indicesOf(positions)) whole[index] = items[k++] as JsonValue;
      }
      let r = 0;
      for (const index of indicesOf(gapsOf(placed, total))) whole[index] = rest[r++] as JsonValue;
    }
    state = replaceAt(state, path, whole);
  }
  return { ...live, state };
}

/** Whether two range lists are the same. */
function sameRanges(a: IndexRanges, b: IndexRanges): boolean {
  return a.length === b.length && a.every(([start, end], i) => start === b[i]![0] && end === b[i]![1]);
}

/** Whether two range lists share an index. */
function overlap(a: IndexRanges, b: IndexRanges): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [aStart, aEnd] = a[i]!;
    const [bStart, bEnd] = b[j]!;
    if (aStart < bEnd && bStart < aEnd) return true;
    if (aEnd <= bStart) i++;
    else j++;
  }
  return false;
}

/** The indices of either list, as ranges (touching ones joined). */
function union(a: IndexRanges, b: IndexRanges): IndexRanges {
  const all = [...a, ...b].sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [start, end] of all) {
    const last = out.at(-1);
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** The indices below `total` that `ranges` leaves out, as ranges. */
function gapsOf(ranges: IndexRanges, total: number): IndexRanges {
  const gaps: Array<[number, number]> = [];
  let next = 0;
  for (const [start, end] of ranges) {
    if (start > next) gaps.push([next, start]);
    next = end;
  }
  if (next < total) gaps.push([next, total]);
  return gaps;
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
