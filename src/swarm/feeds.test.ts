import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryBroker, createMemoryBus } from '../bus/index.js';
import { ManualClock, silentLogger } from '../core/index.js';
import type { Feed, FeedPosition, FeedStart, FeedStep } from '../market/index.js';
import { runGaps } from '../runspec/index.js';
import { openSwarmFeed } from './feeds.js';
import { type SwarmSpec, parseSwarmSpecText, swarmSpecWarnings } from './spec.js';

/** A synthetic market with everything a spec can generate: pairs, venue copies and the (untraded) volatility index. */
const SYNTHETIC = [
  'name: streamed',
  'data:',
  '  source: synthetic',
  '  seed: 11',
  '  symbols: [AAA, BBB]',
  '  barCount: 300',
  '  pairs: [{ leader: AAA, follower: AAB, hedgeRatio: 1.5 }]',
  '  venues: { names: [alpha, beta], symbols: [BBB] }',
  'strategies:',
  '  - { type: sma-crossover, symbol: AAA, fastPeriod: 5, slowPeriod: 20, sizing: { type: fixed-quantity, units: 1 } }',
  '  - { type: sma-crossover, symbol: BBB@alpha, fastPeriod: 50, slowPeriod: 400, sizing: { type: fixed-quantity, units: 1 } }',
  '',
].join('\n');

const broker = createMemoryBroker();
const bus = createMemoryBus({ broker, logger: silentLogger });
afterAll(() => bus.close());

function open(spec: SwarmSpec, from?: FeedStart): Promise<Feed> {
  return openSwarmFeed({ spec, swarmId: 'streamed', bus, clock: new ManualClock(), logger: silentLogger, ...(from === undefined ? {} : { from: from as FeedPosition }) });
}

async function readAll(feed: Feed): Promise<FeedStep[]> {
  const steps: FeedStep[] = [];
  for (let batch = await feed.read(64); batch.length > 0; batch = await feed.read(64)) steps.push(...batch);
  return steps;
}

describe('a deployment\'s synthetic data, streamed (parseSwarmSpecText with streamData)', () => {
  it('holds no bars, and its feed gives exactly the steps of the market generated whole, from any position', async () => {
    const whole = await parseSwarmSpecText(SYNTHETIC, 'whole', '/nonexistent');
    const streamed = await parseSwarmSpecText(SYNTHETIC, 'streamed', '/nonexistent', { streamData: true });
    expect(streamed.streamed?.barCount).toBe(300);
    expect(streamed.streamed?.symbols).toEqual(['AAA', 'BBB', 'AAB', 'BBB@alpha', 'BBB@beta']);
    expect([...(streamed.backtest.bars as ReadonlyMap<string, unknown>).keys()]).toEqual([]);
    expect(whole.streamed).toBeUndefined();

    const reference = await readAll(await open(whole));
    expect(reference).toHaveLength(300);
    // Every bar bit for bit (toEqual compares numbers with Object.is).
    const fromStart = await open(streamed);
    expect(fromStart.symbols).toEqual((await open(whole)).symbols);
    expect(fromStart.stepCount).toBe(300);
    expect(await readAll(fromStart)).toEqual(reference);
    for (const step of [1, 137, 299, 300]) {
      const position: FeedPosition = { step, lastTimeMs: reference[step - 1]!.timeMs };
      expect(await readAll(await open(streamed, position))).toEqual(reference.slice(step));
    }
  });

  it('leaves the run as it was: the same warnings and data gaps (none: synthetic bars come at even intervals)', async () => {
    const whole = await parseSwarmSpecText(SYNTHETIC, 'whole', '/nonexistent');
    const streamed = await parseSwarmSpecText(SYNTHETIC, 'streamed', '/nonexistent', { streamData: true });
    expect(swarmSpecWarnings(streamed)).toEqual(swarmSpecWarnings(whole));
    expect(swarmSpecWarnings(streamed).map((warning) => warning.message)).toHaveLength(1);
    expect(runGaps(streamed.backtest)).toEqual(runGaps(whole.backtest));
    expect(runGaps(whole.backtest)?.found).toEqual([]);
  });

  it('applies only to a synthetic market replayed once by the default feed', async () => {
    const looping = await parseSwarmSpecText(`${SYNTHETIC}swarm: { feed: { source: data, loop: true } }\n`, 'looping', '/nonexistent', { streamData: true });
    expect(looping.streamed).toBeUndefined();
    expect((looping.backtest.bars as ReadonlyMap<string, unknown>).size).toBe(5);
    const bus = await parseSwarmSpecText(`${SYNTHETIC}swarm: { feed: { source: bus } }\n`, 'bus', '/nonexistent', { streamData: true });
    expect(bus.streamed).toBeUndefined();
  });
});
