import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { InvalidInputError, SystemClock, type Clock } from '../../core/index.js';
import type { CodeLanguage } from './determinism.js';

/** What identifies a program run for caching: the exact code, its language and its env vars. */
export interface CacheRequest {
  readonly code: string;
  readonly language: CodeLanguage;
  /** Environment variables. Omitted and `{}` are the same program, so they share a key. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Options for {@link ResultCache}. All optional; units are in the names. */
export interface ResultCacheOptions {
  /**
   * How long an entry is served after it was set, in milliseconds (a whole number >= 1). An entry set at
   * `t` is a hit up to `t + ttlMs - 1` and a miss from `t + ttlMs` on. A hit does not extend it.
   * @default 300_000 (5 minutes)
   */
  ttlMs?: number;
  /**
   * Most entries held (a whole number >= 1); setting one more evicts the least recently used.
   * @default 1000
   */
  maxEntries?: number;
  /**
   * Source of time for expiry and `ageMs`.
   * @default new SystemClock()
   */
  clock?: Clock;
}

/** {@link ResultCacheOptions} with every default applied and every value checked. */
export interface ResultCacheConfig {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly clock: Clock;
}

/** The answer of {@link ResultCache.get}. */
export type CacheLookup<T> =
  | { readonly hit: true; readonly value: T; /** Milliseconds since the value was set. */ readonly ageMs: number }
  | { readonly hit: false };

/** Counters for metrics, from {@link ResultCache.stats}. Counts are since the cache was made. */
export interface ResultCacheStats {
  /** Entries held now (expired ones are dropped before counting). */
  readonly size: number;
  readonly hits: number;
  readonly misses: number;
  /** Unexpired entries dropped to make room for newer ones (least recently used first). */
  readonly evictions: number;
  /** Entries dropped because their `ttlMs` had passed (found on `get`, `stats` or eviction). */
  readonly expired: number;
}

const DEFAULT_TTL_MS = 300_000;
const DEFAULT_MAX_ENTRIES = 1000;
/** Part of every key, so a change to the encoding can never collide with old keys. */
const KEY_VERSION = 'tradeswarm.exec.cache/v1';

/**
 * Applies defaults to `options` and checks them once.
 * @returns a frozen, complete config.
 * @throws {InvalidInputError} naming the field: `ttlMs` or `maxEntries` not a whole number >= 1;
 *   `clock` not a {@link Clock}.
 */
export function compileResultCacheOptions(options: ResultCacheOptions = {}): ResultCacheConfig {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const clock = options.clock ?? new SystemClock();
  requireWholeNumber('ttlMs', ttlMs, 'how long a result is served, in milliseconds');
  requireWholeNumber('maxEntries', maxEntries, 'the most results held');
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
    throw new InvalidInputError('clock', 'must be a Clock from core (SystemClock or ManualClock).');
  }
  return Object.freeze({ ttlMs, maxEntries, clock });
}

function requireWholeNumber(field: string, value: unknown, meaning: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidInputError(field, `must be a whole number >= 1 (${meaning}), got ${String(value)}.`);
  }
}

/**
 * The cache key of a run: SHA-256 (hex) over the JSON of `[version, language, code, env entries sorted
 * by name]`. JSON quotes and escapes every string (lone surrogates included), so the encoding is
 * unambiguous: different code, language or env never share an encoding (`{A:'1',B:'2'}` is not
 * `{A:'12'}`), and the same inputs always give the same key. Env key order does not matter, and an
 * omitted env equals `{}`: both run the program with no extra variables.
 * @throws {InvalidInputError} (`code`, `language`, `env` or `env.NAME`) for a non-string code, an unknown
 *   language, an env that is not an object, or an env value that is not a string.
 */
export function cacheKey(request: CacheRequest): string {
  if (typeof request !== 'object' || request === null) throw new InvalidInputError('request', 'must be an object with code and language.');
  const { code, language, env } = request;
  if (typeof code !== 'string') throw new InvalidInputError('code', `must be a string, got ${typeof code}.`);
  if (language !== 'python' && language !== 'javascript') {
    throw new InvalidInputError('language', `must be 'python' or 'javascript', got ${JSON.stringify(language)}.`);
  }
  if (env !== undefined && (typeof env !== 'object' || env === null || Array.isArray(env))) {
    throw new InvalidInputError('env', 'must be an object of string values, or omitted.');
  }
  const entries = Object.entries(env ?? {});
  for (const [name, value] of entries) {
    if (typeof value !== 'string') throw new InvalidInputError(`env.${name}`, `must be a string, got ${typeof value}.`);
  }
  // Plain code-unit order: the same in every locale, and names are unique, so the order is total.
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify([KEY_VERSION, language, code, entries]), 'utf8').digest('hex');
}

interface Entry<T> {
  readonly value: T;
  readonly storedAtMs: number;
}

/**
 * Results of earlier runs, keyed by {@link cacheKey}, bounded by `maxEntries` (least recently used
 * evicted first) and `ttlMs`. It does not judge determinism: callers `set` only results of code that
 * `judgeDeterminism` called deterministic.
 *
 * Size and recency come from `lru-cache`; expiry is done here. lru-cache v11 takes a custom time source
 * (`perf`), but it treats a start time of 0 as "no TTL" (a `ManualClock` starting at 0 would never
 * expire anything), counts an entry as stale only once its age is strictly greater than the TTL, and
 * arms real `setTimeout`s for its `ttlResolution` time cache. So each entry stores when it was set and
 * `get` compares against `clock.now()`: a miss exactly at `ttlMs`, whatever the clock.
 */
export class ResultCache<T> {
  readonly config: ResultCacheConfig;
  private readonly entries: LRUCache<string, Entry<T>>;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private expiredCount = 0;

  /** @throws {InvalidInputError} naming the field, see {@link compileResultCacheOptions}. */
  constructor(options: ResultCacheOptions = {}) {
    this.config = compileResultCacheOptions(options);
    this.entries = new LRUCache<string, Entry<T>>({
      max: this.config.maxEntries,
      dispose: (entry, _key, reason) => {
        if (reason !== 'evict') return;
        if (this.isExpired(entry)) this.expiredCount++;
        else this.evictions++;
      },
    });
  }

  /**
   * Looks up the result of `request`; a hit makes it the most recently used.
   * @throws {InvalidInputError} for a malformed request, see {@link cacheKey}.
   */
  get(request: CacheRequest): CacheLookup<T> {
    const key = cacheKey(request);
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses++;
      return { hit: false };
    }
    if (this.isExpired(entry)) {
      this.entries.delete(key);
      this.expiredCount++;
      this.misses++;
      return { hit: false };
    }
    this.hits++;
    return { hit: true, value: entry.value, ageMs: this.config.clock.now() - entry.storedAtMs };
  }

  /**
   * Stores the result of `request`, replacing any earlier one and starting its `ttlMs` now. Call it only
   * for code judged deterministic.
   * @throws {InvalidInputError} for a malformed request, see {@link cacheKey}.
   */
  set(request: CacheRequest, value: T): void {
    this.entries.set(cacheKey(request), { value, storedAtMs: this.config.clock.now() });
  }

  /** Counters and the current size; drops expired entries first. */
  stats(): ResultCacheStats {
    const expiredKeys: string[] = [];
    for (const [key, entry] of this.entries.entries()) if (this.isExpired(entry)) expiredKeys.push(key);
    for (const key of expiredKeys) this.entries.delete(key);
    this.expiredCount += expiredKeys.length;
    return { size: this.entries.size, hits: this.hits, misses: this.misses, evictions: this.evictions, expired: this.expiredCount };
  }

  /** Drops every entry. Counters are kept (they count since the cache was made). */
  clear(): void {
    this.entries.clear();
  }

  private isExpired(entry: Entry<T>): boolean {
    return this.config.clock.now() - entry.storedAtMs >= this.config.ttlMs;
  }
}
