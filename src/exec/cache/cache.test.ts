import { describe, expect, it } from 'vitest';
import { InvalidInputError, ManualClock } from '../../core/index.js';
import { ResultCache, cacheKey, compileResultCacheOptions, type CacheRequest, type ResultCacheOptions } from './cache.js';

const PY: CacheRequest = { code: 'print(1)', language: 'python' };

function cache(options: ResultCacheOptions = {}): { cache: ResultCache<string>; clock: ManualClock } {
  const clock = new ManualClock(0);
  return { cache: new ResultCache<string>({ clock, ...options }), clock };
}

describe('cacheKey', () => {
  it('is a SHA-256 hex digest, the same for the same inputs', () => {
    expect(cacheKey(PY)).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey({ ...PY })).toBe(cacheKey(PY));
  });

  it.each<[string, CacheRequest, CacheRequest]>([
    ['different code', PY, { code: 'print(2)', language: 'python' }],
    ['code differing only in whitespace', PY, { code: 'print(1) ', language: 'python' }],
    ['different language', { code: '1', language: 'python' }, { code: '1', language: 'javascript' }],
    ['env values that concatenate alike', { ...PY, env: { A: '1', B: '2' } }, { ...PY, env: { A: '12' } }],
    ['env names that concatenate alike', { ...PY, env: { AB: '1' } }, { ...PY, env: { A: 'B1' } }],
    ['env with a separator inside a value', { ...PY, env: { A: '1","B' } }, { ...PY, env: { A: '1', B: '' } }],
    ['env moved into the code', { code: 'x', language: 'python', env: { A: '1' } }, { code: 'x["A","1"]', language: 'python' }],
    ['an empty env value versus no variable', { ...PY, env: { A: '' } }, PY],
    ['different lone surrogates', { code: '\ud800', language: 'python' }, { code: '\ud801', language: 'python' }],
  ])('differs for %s', (_name, a, b) => {
    expect(cacheKey(a)).not.toBe(cacheKey(b));
  });

  it('ignores env key order', () => {
    expect(cacheKey({ ...PY, env: { A: '1', B: '2', C: '3' } })).toBe(cacheKey({ ...PY, env: { C: '3', A: '1', B: '2' } }));
  });

  it('treats an omitted env and {} as the same program', () => {
    expect(cacheKey({ ...PY, env: {} })).toBe(cacheKey(PY));
  });

  it('rejects malformed requests, naming the field', () => {
    expect(() => cacheKey({ code: 1 as unknown as string, language: 'python' })).toThrow(/^code: /);
    expect(() => cacheKey({ code: '1', language: 'ruby' as 'python' })).toThrow(/^language: /);
    expect(() => cacheKey({ ...PY, env: { A: 1 as unknown as string } })).toThrow(/^env\.A: /);
    expect(() => cacheKey({ ...PY, env: [] as unknown as Record<string, string> })).toThrow(/^env: /);
  });
});

describe('ResultCache', () => {
  it('misses before set and hits after, with the exact age', () => {
    const { cache: c, clock } = cache();
    expect(c.get(PY)).toEqual({ hit: false });
    clock.advance(1000);
    c.set(PY, 'out');
    expect(c.get(PY)).toEqual({ hit: true, value: 'out', ageMs: 0 });
    clock.advance(1234);
    expect(c.get(PY)).toEqual({ hit: true, value: 'out', ageMs: 1234 });
    expect(c.stats()).toEqual({ size: 1, hits: 2, misses: 1, evictions: 0, expired: 0 });
  });

  it('misses for different code, language or env, and hits for env in another key order', () => {
    const { cache: c } = cache();
    c.set({ ...PY, env: { A: '1', B: '2' } }, 'out');
    expect(c.get({ ...PY, env: { A: '12' } }).hit).toBe(false);
    expect(c.get({ ...PY, env: { A: '1', B: '2' }, code: 'print(2)' }).hit).toBe(false);
    expect(c.get({ ...PY, env: { A: '1', B: '2' }, language: 'javascript' }).hit).toBe(false);
    expect(c.get(PY).hit).toBe(false);
    expect(c.get({ ...PY, env: { B: '2', A: '1' } })).toEqual({ hit: true, value: 'out', ageMs: 0 });
  });

  it('serves an entry set with env {} to a request without env', () => {
    const { cache: c } = cache();
    c.set({ ...PY, env: {} }, 'out');
    expect(c.get(PY)).toEqual({ hit: true, value: 'out', ageMs: 0 });
  });

  it('defaults to a 5 minute TTL and 1000 entries', () => {
    const config = compileResultCacheOptions({ clock: new ManualClock() });
    expect(config.ttlMs).toBe(300_000);
    expect(config.maxEntries).toBe(1000);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('expires exactly at ttlMs: a hit at ttlMs - 1, a miss at ttlMs, counted as expired', () => {
    const { cache: c, clock } = cache({ ttlMs: 100 });
    c.set(PY, 'out');
    clock.advance(99);
    expect(c.get(PY)).toEqual({ hit: true, value: 'out', ageMs: 99 });
    clock.advance(1);
    expect(c.get(PY)).toEqual({ hit: false });
    expect(c.stats()).toEqual({ size: 0, hits: 1, misses: 1, evictions: 0, expired: 1 });
  });

  it('expires on the default TTL with a clock starting at 0', () => {
    const { cache: c, clock } = cache();
    c.set(PY, 'out');
    clock.advance(299_999);
    expect(c.get(PY).hit).toBe(true);
    clock.advance(1);
    expect(c.get(PY).hit).toBe(false);
  });

  it('does not extend the TTL on a hit; set restarts it', () => {
    const { cache: c, clock } = cache({ ttlMs: 100 });
    c.set(PY, 'a');
    clock.advance(60);
    expect(c.get(PY).hit).toBe(true);
    clock.advance(40);
    expect(c.get(PY).hit).toBe(false);
    c.set(PY, 'b');
    clock.advance(60);
    c.set(PY, 'c');
    clock.advance(60);
    expect(c.get(PY)).toEqual({ hit: true, value: 'c', ageMs: 60 });
  });

  it('drops expired entries when reporting stats', () => {
    const { cache: c, clock } = cache({ ttlMs: 100 });
    c.set(PY, 'a');
    clock.advance(50);
    c.set({ ...PY, code: 'print(2)' }, 'b');
    clock.advance(50);
    expect(c.stats()).toEqual({ size: 1, hits: 0, misses: 0, evictions: 0, expired: 1 });
  });

  it('evicts the least recently used entry past maxEntries, counting evictions', () => {
    const { cache: c } = cache({ maxEntries: 2 });
    const one = { ...PY, code: '1' };
    const two = { ...PY, code: '2' };
    const three = { ...PY, code: '3' };
    c.set(one, 'one');
    c.set(two, 'two');
    expect(c.get(one).hit).toBe(true); // `two` is now the least recently used
    c.set(three, 'three');
    expect(c.get(two).hit).toBe(false);
    expect(c.get(one)).toEqual({ hit: true, value: 'one', ageMs: 0 });
    expect(c.get(three)).toEqual({ hit: true, value: 'three', ageMs: 0 });
    expect(c.stats()).toEqual({ size: 2, hits: 3, misses: 1, evictions: 1, expired: 0 });
  });

  it('counts an expired entry pushed out for room as expired, not evicted', () => {
    const { cache: c, clock } = cache({ maxEntries: 1, ttlMs: 10 });
    c.set(PY, 'a');
    clock.advance(10);
    c.set({ ...PY, code: 'print(2)' }, 'b');
    expect(c.stats()).toEqual({ size: 1, hits: 0, misses: 0, evictions: 0, expired: 1 });
  });

  it('replacing a value is not an eviction', () => {
    const { cache: c } = cache({ maxEntries: 1 });
    c.set(PY, 'a');
    c.set(PY, 'b');
    expect(c.get(PY)).toEqual({ hit: true, value: 'b', ageMs: 0 });
    expect(c.stats().evictions).toBe(0);
  });

  it('clear drops every entry and keeps the counters', () => {
    const { cache: c } = cache();
    c.set(PY, 'a');
    expect(c.get(PY).hit).toBe(true);
    c.clear();
    expect(c.get(PY).hit).toBe(false);
    expect(c.stats()).toEqual({ size: 0, hits: 1, misses: 1, evictions: 0, expired: 0 });
  });

  it.each<[string, ResultCacheOptions]>([
    ['ttlMs', { ttlMs: 0 }],
    ['ttlMs', { ttlMs: 1.5 }],
    ['ttlMs', { ttlMs: Number.NaN }],
    ['ttlMs', { ttlMs: Number.POSITIVE_INFINITY }],
    ['maxEntries', { maxEntries: 0 }],
    ['maxEntries', { maxEntries: -1 }],
    ['maxEntries', { maxEntries: '10' as unknown as number }],
    ['clock', { clock: {} as ManualClock }],
  ])('rejects an invalid %s', (field, options) => {
    const attempt = (): unknown => new ResultCache(options);
    expect(attempt).toThrow(InvalidInputError);
    try {
      attempt();
    } catch (error) {
      expect((error as InvalidInputError).field).toBe(field);
      expect((error as Error).message.startsWith(`${field}: `)).toBe(true);
    }
  });
});
