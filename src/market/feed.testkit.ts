// The contract every Feed passes (STYLE: one shared contract test per seam, as Hono's runTest). A
// feed's test file calls runFeedContract with a function that opens the feed under test. Test code:
// it imports vitest, so index.ts does not export it.
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { FeedClosedError, FeedPositionError } from './errors.js';
import { type Feed, type FeedPosition, type FeedStart, type FeedStep, positionAfter } from './feed.js';

/** What {@link runFeedContract} needs. */
export interface FeedContractOptions {
  /** Names the suite. */
  readonly name: string;
  /** Opens a new feed of the same data and options on every call, at `from` when given. */
  readonly makeFeed: (from?: FeedStart) => Feed | Promise<Feed>;
  /** Steps read from an endless feed, where a finite one is read to its end. @default 50 */
  readonly sampleSteps?: number;
  /**
   * How the feed resumes. `anywhere`: a replay, which counts steps from the start of its data, so
   * it starts at a bare `{ step }` and refuses a saved position whose time does not fit its step.
   * `after-time`: a live feed (bus, exchange), which has no fixed start to count from: it resumes
   * after a time, `{ afterTimeMs }` (counting steps from 0) or a saved position (counting on from
   * its step, after its time), refuses a bare `{ step }` past 0 (InvalidInputError naming
   * `from.lastTimeMs`), and cannot tell whether a saved position fits data it has not seen.
   * @default 'anywhere'
   */
  readonly resumes?: 'anywhere' | 'after-time';
}

/**
 * Registers the feed contract as a `describe` block: steps in time order, grouped by time, symbols
 * in order; same options, same steps; chunked reads give what one read gives; resuming from a
 * saved position (or a step, or a time) gives exactly the remaining steps, and a position the data
 * does not fit is refused; close; an endless feed keeps going.
 */
export function runFeedContract(options: FeedContractOptions): void {
  const sampleSteps = options.sampleSteps ?? 50;
  const live = options.resumes === 'after-time';

  /** Every step of a finite feed, or the first `sampleSteps` of an endless one. */
  async function readAll(feed: Feed, atMost = Infinity): Promise<FeedStep[]> {
    const limit = Math.min(atMost, feed.stepCount ?? sampleSteps);
    const steps: FeedStep[] = [];
    while (steps.length < limit) {
      const batch = await feed.read(Math.min(1000, limit - steps.length));
      if (batch.length === 0) break;
      steps.push(...batch);
    }
    return steps;
  }

  /**
   * Deep equality of step lists, compared as JSON first: a real-data feed has thousands of steps,
   * where a deep comparison costs seconds. The first differing step is then compared deeply, for
   * a readable failure.
   */
  function expectSameSteps(actual: readonly FeedStep[], expected: readonly FeedStep[], what = 'steps'): void {
    expect(actual.length, `${what}: number of steps`).toBe(expected.length);
    const differs = actual.findIndex((step, i) => JSON.stringify(step) !== JSON.stringify(expected[i]));
    if (differs >= 0) expect(actual[differs], `${what}: step ${differs} of the list`).toEqual(expected[differs]);
  }

  /**
   * `n` steps: one read for a replay, which gives full batches; as many reads as it takes for a
   * live feed, whose read gives what is ready (at least one step).
   */
  async function take(feed: Feed, n: number): Promise<FeedStep[]> {
    if (!live) return [...(await feed.read(n))];
    const steps: FeedStep[] = [];
    while (steps.length < n) {
      const batch = await feed.read(n - steps.length);
      expect(batch.length, 'a live read gives at least one step').toBeGreaterThan(0);
      steps.push(...batch);
    }
    return steps;
  }

  async function open(from?: FeedStart): Promise<Feed> {
    return await options.makeFeed(from);
  }

  describe(`Feed contract: ${options.name}`, () => {
    it('serves steps in time order, each the bars of one time, symbols in the order of feed.symbols', async () => {
      const feed = await open();
      expect(feed.symbols.length).toBeGreaterThan(0);
      expect([...feed.symbols].sort()).toEqual(feed.symbols);
      expect(new Set(feed.symbols).size).toBe(feed.symbols.length);
      const steps = await readAll(feed);
      expect(steps.length).toBeGreaterThan(2);
      const seen = new Set<string>();
      steps.forEach((step, i) => {
        expect(step.index).toBe(i);
        expect(Object.isFrozen(step) && Object.isFrozen(step.bars)).toBe(true);
        if (i > 0) expect(step.timeMs).toBeGreaterThan((steps[i - 1] as FeedStep).timeMs);
        expect(step.bars.length).toBeGreaterThan(0);
        const places = step.bars.map((bar) => feed.symbols.indexOf(bar.symbol));
        expect(places.every((place) => place >= 0)).toBe(true);
        expect(places.every((place, k) => k === 0 || place > (places[k - 1] as number))).toBe(true);
        expect(step.bars.every((bar) => bar.timeMs === step.timeMs)).toBe(true);
        for (const bar of step.bars) seen.add(bar.symbol);
      });
      // A finite feed is read whole, so every symbol it lists has bars.
      if (feed.stepCount !== null) expect([...seen].sort()).toEqual(feed.symbols);
      expect(feed.position()).toEqual(positionAfter(steps.at(-1) as FeedStep));
      await feed.close();
    });

    it('says how many steps it has, or that it is endless, and keeps its end', async () => {
      const feed = await open();
      const steps = await readAll(feed);
      if (feed.stepCount === null) {
        // Endless: batches keep coming, full.
        for (let round = 0; round < 3; round++) expect(await take(feed, sampleSteps)).toHaveLength(sampleSteps);
        expect(feed.position().step).toBe(4 * sampleSteps);
      } else {
        expect(steps).toHaveLength(feed.stepCount);
        expect(await feed.read(10)).toEqual([]);
        expect(await feed.read()).toEqual([]);
        expect(feed.position()).toEqual({ step: feed.stepCount, lastTimeMs: steps.at(-1)?.timeMs });
      }
      await feed.close();
    });

    it('gives the same steps for the same options', async () => {
      const [first, second] = [await open(), await open()];
      expect(second.symbols).toEqual(first.symbols);
      expectSameSteps(await readAll(second), await readAll(first));
      await Promise.all([first.close(), second.close()]);
    });

    it('gives the same steps however they are read in chunks', async () => {
      const whole = await readAll(await open());
      const feed = await open();
      const chunked: FeedStep[] = [];
      const sizes = [1, 2, 3, 1, 7, 16, 5];
      for (let i = 0; chunked.length < whole.length; i++) {
        const size = Math.min(sizes[i % sizes.length] as number, whole.length - chunked.length);
        const batch = await take(feed, size);
        expect(batch).toHaveLength(size);
        chunked.push(...batch);
      }
      expectSameSteps(chunked, whole);
      await feed.close();
    });

    it('resumes from a saved position with exactly the remaining steps, also from a step or a time', async () => {
      const whole = await readAll(await open());
      if (live) expect(whole, 'an endless feed gives sampleSteps').toHaveLength(sampleSteps);
      const cuts = [0, 1, 2, Math.floor(whole.length / 2), whole.length - 1];
      for (const cut of cuts) {
        const feed = await open();
        const head = cut === 0 ? [] : await take(feed, cut);
        // Saved as JSON, as a store keeps it.
        const saved = JSON.parse(JSON.stringify(feed.position())) as FeedPosition;
        // A live feed opened after a time reports that time before its first step.
        if (cut > 0 || !live) expect(saved).toEqual(cut === 0 ? { step: 0, lastTimeMs: null } : positionAfter(head.at(-1) as FeedStep));
        await feed.close();
        const afterTimeMs = cut === 0 ? (whole[0] as FeedStep).timeMs - 1 : (whole[cut - 1] as FeedStep).timeMs;
        const starts: FeedStart[] = live ? [saved, { afterTimeMs }] : [saved, { step: cut }, { afterTimeMs }];
        for (const from of starts) {
          const resumed = await open(from);
          // A live feed resumed after a time counts its steps from 0.
          const recounted = live && 'afterTimeMs' in from;
          expect(resumed.position(), `from ${JSON.stringify(from)}`).toEqual(recounted ? { step: 0, lastTimeMs: afterTimeMs } : saved);
          const rest = await readAll(resumed, whole.length - cut);
          const expected = whole.slice(cut).map((step) => (recounted ? { ...step, index: step.index - cut } : step));
          expectSameSteps(rest, expected, `from ${JSON.stringify(from)}`);
          await resumed.close();
        }
        if (live && cut > 0) await expect(Promise.resolve().then(() => open({ step: cut })), 'a bare step').rejects.toThrow(/^from\.lastTimeMs: /);
      }
      const last = whole.at(-1) as FeedStep;
      const atEnd = await open(positionAfter(last));
      if (atEnd.stepCount === null) expect((await atEnd.read())[0]?.index).toBe(whole.length);
      else expect(await atEnd.read()).toEqual([]);
      await atEnd.close();
    });

    it('refuses a saved position its data does not fit, and a malformed start', async () => {
      const whole = await readAll(await open());
      const second = whole[1] as FeedStep;
      if (!live) {
        await expect(Promise.resolve().then(() => open({ step: 2, lastTimeMs: second.timeMs + 1 }))).rejects.toBeInstanceOf(FeedPositionError);
        await expect(Promise.resolve().then(() => open({ step: 0, lastTimeMs: second.timeMs }))).rejects.toBeInstanceOf(FeedPositionError);
      }
      for (const bad of [{ step: -1 }, { step: 1.5 }, { step: 1, lastTimeMs: 'yesterday' }, { afterTimeMs: Number.NaN }, { step: 1, afterTimeMs: 0 }, null]) {
        await expect(Promise.resolve().then(() => open(bad as unknown as FeedStart)), JSON.stringify(bad)).rejects.toBeInstanceOf(InvalidInputError);
      }
      const feed = await open();
      if (feed.stepCount !== null) {
        await expect(Promise.resolve().then(() => open({ step: (feed.stepCount as number) + 1 }))).rejects.toThrow(/^from\.step: /);
      }
      await expect(feed.read(0)).rejects.toThrow(/^maxSteps: /);
      await expect(feed.read(2.5)).rejects.toThrow(/^maxSteps: /);
      await feed.close();
    });

    it('refuses reads once closed, and closes twice harmlessly', async () => {
      const feed = await open();
      expect(await take(feed, 2)).toHaveLength(2);
      expect(feed.closed).toBe(false);
      await feed.close();
      await feed.close();
      expect(feed.closed).toBe(true);
      await expect(feed.read()).rejects.toBeInstanceOf(FeedClosedError);
      expect(feed.position().step).toBe(2);
    });
  });
}
