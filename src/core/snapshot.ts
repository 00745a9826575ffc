/**
 * Snapshots: the state of a stateful object (an indicator, a strategy, the decision pipeline) as
 * plain JSON, to restore a fresh object of the same spec exactly where the first one stood. Every
 * snapshot says what it is (`kind`), the format `version` it was written in and the `spec` it was
 * made from; {@link openSnapshot} checks all three before any state is read, and a
 * {@link SnapshotReader} reads the state, naming the field of the first value that is wrong.
 */
import { IncompatibleSnapshotError, type SnapshotDifference, SnapshotProblem } from './errors.js';

/** A JSON value, as `JSON.parse` gives it back. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

/**
 * A number in JSON. JSON holds finite numbers only and writes -0 as 0, so the few values it cannot
 * carry go as strings; every other number is itself, and `JSON.stringify` writes the shortest text
 * that `JSON.parse` reads back as the very same double.
 */
export type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';

/** What every snapshot holds. A type alias (not an interface), so that it is a {@link JsonValue}. */
export type Snapshot = {
  /** What kind of object made it, e.g. `strategy`. */
  readonly kind: string;
  /** The format version of `state`: a build restores only the versions it knows. */
  readonly version: number;
  /** The spec the object was built from, as far as it shapes the state (periods, symbols, names). */
  readonly spec: JsonObject;
  readonly state: JsonObject;
};

/** `value` as a {@link JsonNumber}: exact through `JSON.stringify` and `JSON.parse`. */
export function toJsonNumber(value: number): JsonNumber {
  if (Number.isFinite(value)) return value === 0 && 1 / value < 0 ? '-0' : value;
  return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
}

/** `value` as a {@link JsonNumber}, `undefined` as `null`. */
export function toOptionalJsonNumber(value: number | undefined): JsonNumber | null {
  return value === undefined ? null : toJsonNumber(value);
}

/** Each number as a {@link JsonNumber}. */
export function toJsonNumbers(values: readonly number[]): JsonNumber[] {
  const out: JsonNumber[] = new Array<JsonNumber>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toJsonNumber(values[i] as number);
  return out;
}

const SPECIAL_NUMBERS: Readonly<Record<string, number>> = { NaN: Number.NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 };

/** The kind, version and spec a snapshot must have to be restored into an object. */
export interface SnapshotExpectation {
  /** What is being restored, for messages, e.g. `strategy "momentum-SPY-60"`. */
  readonly subject: string;
  readonly kind: string;
  readonly version: number;
  /** The object's own spec; the snapshot's must be equal to it. */
  readonly spec: JsonObject;
}

/** Most differing fields a message lists (the error's `differences` has them all). */
const MAX_LISTED_DIFFERENCES = 5;

/**
 * Checks that `snapshot` is a snapshot of `expected.kind`, in `expected.version`, made from a spec
 * equal to `expected.spec`, and returns a reader of its state. Reads nothing else.
 * @throws IncompatibleSnapshotError: `invalid` when it is not such a snapshot, `version` for
 *   another version, `spec` for another spec (naming every differing field).
 */
export function openSnapshot(snapshot: unknown, expected: SnapshotExpectation): SnapshotReader {
  const { subject, kind, version } = expected;
  const root = new SnapshotReader(subject, snapshot, '').object();
  const found = root.raw('kind');
  if (found !== kind) root.fail('kind', `must be ${JSON.stringify(kind)}, got ${describe(found)}`);
  const foundVersion = root.raw('version');
  if (foundVersion !== version) {
    throw new IncompatibleSnapshotError(subject, SnapshotProblem.version, `it is in format version ${describe(foundVersion)}, and this build reads version ${version} only`);
  }
  const differences: SnapshotDifference[] = [];
  diff(root.object('spec').raw(), expected.spec, '', differences);
  if (differences.length > 0) {
    const listed = differences.slice(0, MAX_LISTED_DIFFERENCES).map(({ field, snapshot: was, expected: is }) =>
      Array.isArray(was) && Array.isArray(is) ? `${field} has ${was.length} items in the snapshot and ${is.length} here` : `${field} is ${describe(was)} in the snapshot and ${describe(is)} here`,
    );
    const more = differences.length > MAX_LISTED_DIFFERENCES ? ` (and ${differences.length - MAX_LISTED_DIFFERENCES} more)` : '';
    throw new IncompatibleSnapshotError(subject, SnapshotProblem.spec, `it was made from a different spec: ${listed.join('; ')}${more}`, differences);
  }
  return root.object('state');
}

/** Appends every field in which `found` differs from `expected`, by path. */
function diff(found: unknown, expected: unknown, path: string, out: SnapshotDifference[]): void {
  if (isPlainObject(found) && isPlainObject(expected)) {
    const keys = new Set([...Object.keys(expected), ...Object.keys(found)]);
    for (const key of keys) diff(found[key], expected[key], path === '' ? key : `${path}.${key}`, out);
    return;
  }
  if (Array.isArray(found) && Array.isArray(expected) && found.length === expected.length) {
    for (let i = 0; i < found.length; i++) diff(found[i], expected[i], `${path}[${i}]`, out);
    return;
  }
  if (!Object.is(found, expected)) out.push({ field: path, snapshot: found, expected });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value for a message: JSON, cut to 80 characters; `absent` for undefined. */
function describe(value: unknown): string {
  if (value === undefined) return 'absent';
  const text = JSON.stringify(value) ?? typeof value;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Reads a value of a snapshot (an object or an array) field by field; the first value that is not
 * what the reader asks for throws {@link IncompatibleSnapshotError} (`invalid`) naming its path.
 */
export class SnapshotReader {
  constructor(
    /** What is being restored, for messages. */
    readonly subject: string,
    private readonly value: unknown,
    /** Where `value` is in the snapshot, e.g. `state.slow.prices`; empty for the root. */
    readonly path: string,
  ) {}

  /** The value read (`key` absent), or its field `key`, unchecked. */
  raw(key?: string | number): unknown {
    if (key === undefined) return this.value;
    if (Array.isArray(this.value)) return typeof key === 'number' ? (this.value as unknown[])[key] : undefined;
    return isPlainObject(this.value) && typeof key === 'string' && Object.hasOwn(this.value, key) ? this.value[key] : undefined;
  }

  /** A reader of the object at `key` (or of this value, `key` absent). */
  object(key?: string | number): SnapshotReader {
    const value = this.raw(key);
    if (!isPlainObject(value)) this.fail(key, `must be an object, got ${describe(value)}`);
    return new SnapshotReader(this.subject, value, this.pathOf(key));
  }

  /** The object at `key`, or `undefined` when it is `null`. */
  optionalObject(key: string | number): SnapshotReader | undefined {
    return this.raw(key) === null ? undefined : this.object(key);
  }

  /** A reader of the array at `key` (its items read by index), checking its length when asked. */
  array(key: string | number, length?: { min?: number; max?: number }): SnapshotReader {
    const value = this.raw(key);
    if (!Array.isArray(value)) this.fail(key, `must be an array, got ${describe(value)}`);
    this.checkLength(key, (value as unknown[]).length, length);
    return this.at(key);
  }

  /** Readers of the items of the array at `key`, checking its length when asked. */
  list(key: string | number, length?: { min?: number; max?: number }): SnapshotReader[] {
    const array = this.array(key, length);
    return (array.raw() as unknown[]).map((_, i) => array.at(i));
  }

  /** A number written as a {@link JsonNumber}. */
  number(key: string | number): number {
    const value = this.raw(key);
    if (typeof value === 'number') return value;
    if (typeof value === 'string' && Object.hasOwn(SPECIAL_NUMBERS, value)) return SPECIAL_NUMBERS[value] as number;
    return this.fail(key, `must be a number, got ${describe(value)}`);
  }

  /** A number, or `undefined` for `null`. */
  optionalNumber(key: string | number): number | undefined {
    return this.raw(key) === null ? undefined : this.number(key);
  }

  /** A finite number. */
  finite(key: string | number): number {
    const value = this.number(key);
    return Number.isFinite(value) ? value : this.fail(key, `must be a finite number, got ${describe(this.raw(key))}`);
  }

  /** A safe integer >= `min`. */
  integer(key: string | number, min = Number.MIN_SAFE_INTEGER): number {
    const value = this.raw(key);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) return this.fail(key, `must be a whole number >= ${min}, got ${describe(value)}`);
    return value;
  }

  /** The array of numbers at `key` (each a {@link JsonNumber}), checking its length when asked. */
  numbers(key: string | number, length?: { min?: number; max?: number }): number[] {
    const value = this.raw(key);
    if (!Array.isArray(value)) this.fail(key, `must be an array of numbers, got ${describe(value)}`);
    const items = value as unknown[];
    this.checkLength(key, items.length, length);
    const reader = this.at(key);
    const out = new Array<number>(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      out[i] = typeof item === 'number' ? item : reader.number(i);
    }
    return out;
  }

  /** The array of safe integers >= `min` at `key`. */
  integers(key: string | number, min = Number.MIN_SAFE_INTEGER): number[] {
    const array = this.array(key);
    return (array.raw() as unknown[]).map((_, i) => array.integer(i, min));
  }

  /** A boolean. */
  boolean(key: string | number): boolean {
    const value = this.raw(key);
    return typeof value === 'boolean' ? value : this.fail(key, `must be true or false, got ${describe(value)}`);
  }

  /** A string, one of `allowed` when given. */
  string<T extends string = string>(key: string | number, allowed?: readonly T[]): T {
    const value = this.raw(key);
    if (typeof value !== 'string') return this.fail(key, `must be a string, got ${describe(value)}`);
    if (allowed !== undefined && !allowed.includes(value as T)) return this.fail(key, `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(value)}`);
    return value as T;
  }

  /**
   * Throws {@link IncompatibleSnapshotError} (`invalid`) naming the field at `key` (or this value).
   * @throws IncompatibleSnapshotError always.
   */
  fail(key: string | number | undefined, message: string): never {
    const path = this.pathOf(key);
    throw new IncompatibleSnapshotError(this.subject, SnapshotProblem.invalid, `${path === '' ? 'the snapshot' : path} ${message}`);
  }

  private at(key: string | number): SnapshotReader {
    return new SnapshotReader(this.subject, this.raw(key), this.pathOf(key));
  }

  private pathOf(key: string | number | undefined): string {
    if (key === undefined) return this.path;
    if (typeof key === 'number') return `${this.path}[${key}]`;
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  private checkLength(key: string | number, length: number, bounds: { min?: number; max?: number } | undefined): void {
    if (bounds?.min !== undefined && length < bounds.min) this.fail(key, `must hold at least ${bounds.min} items, got ${length}`);
    if (bounds?.max !== undefined && length > bounds.max) this.fail(key, `must hold at most ${bounds.max} items, got ${length}`);
  }
}
