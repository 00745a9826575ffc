import { afterEach, describe, expect, it } from 'vitest';
import { type Bus, type MemoryBroker, MessageRegistry, createMemoryBroker, createMemoryBus, swarmTopics } from '../bus/index.js';
import { capturingLogger } from './livefeed.testkit.js';
import { InvalidInputError, ManualClock, silentLogger } from '../core/index.js';
import type { FeedStart, FeedStep } from '../market/index.js';
import { runFeedContract } from '../market/feed.testkit.js';
import { BarMessage, type BarPayload, type BusFeedOptions, openBusFeed } from './index.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2024, 0, 2, 14, 30);
const topic = swarmTopics('live').marketBars();
const registry = MessageRegistry.create(BarMessage);

function payload(symbol: string, timeMs: number, close: number, extra: Partial<BarPayload> = {}): BarPayload {
  return { symbol, time: timeMs, open: close, high: close + 1, low: close - 1, close, volume: 100, ...extra };
}

/** Three symbols over `times` minutes: BBB skips every fifth minute, CCC trades every other one. */
function marketBars(times: number): BarPayload[] {
  const bars: BarPayload[] = [];
  for (let i = 0; i < times; i++) {
    const timeMs = T0 + i * MINUTE;
    bars.push(payload('AAA', timeMs, 10 + i));
    if (i % 5 !== 3) bars.push(payload('BBB', timeMs, 20 + i));
    if (i % 2 === 0) bars.push(payload('CCC', timeMs, 30 + i));
  }
  return bars;
}

interface Rig {
  readonly broker: MemoryBroker;
  readonly publisher: Bus;
  readonly clock: ManualClock;
  readonly publish: (bars: readonly BarPayload[]) => Promise<void>;
  readonly close: () => Promise<void>;
}

function rig(): Rig {
  const clock = new ManualClock(T0);
  const broker = createMemoryBroker({ logger: silentLogger });
  const publisher = createMemoryBus({ broker, registry, clock, logger: silentLogger, clientId: 'user-publisher' });
  const buses: Bus[] = [publisher];
  return {
    broker,
    publisher,
    clock,
    publish: async (bars) => {
      for (const bar of bars) await publisher.publish(topic, BarMessage.draft(bar));
      await broker.flush();
    },
    close: async () => {
      await Promise.all(buses.map((bus) => bus.close()));
      await broker.close();
    },
  };
}

const rigs: Rig[] = [];
afterEach(async () => {
  await Promise.all(rigs.splice(0).map((one) => one.close()));
});

async function open(options: Partial<BusFeedOptions> = {}) {
  const made = rig();
  rigs.push(made);
  const bus = createMemoryBus({ broker: made.broker, registry, clock: made.clock, logger: silentLogger, clientId: 'control-plane' });
  const feed = await openBusFeed({ bus, topic, symbols: ['CCC', 'AAA', 'BBB'], clock: made.clock, logger: silentLogger, ...options });
  return { ...made, feed };
}

runFeedContract({
  name: 'bus feed',
  resumes: 'after-time',
  makeFeed: async (from?: FeedStart) => {
    const { feed, publish } = await open(from === undefined ? {} : { start: from });
    // Enough for every clause (4 × 50 steps); the last minute stays pending (nothing later came).
    await publish(marketBars(260));
    return feed;
  },
});

function describeSteps(steps: readonly FeedStep[]): string[] {
  return steps.map((step) => `${step.index} +${(step.timeMs - T0) / MINUTE}m ${step.bars.map((bar) => `${bar.symbol}:${bar.close}`).join(' ')}`);
}

describe('openBusFeed', () => {
  it('hands out a step once every symbol sent a later bar, or stepAfterMs after its first bar', async () => {
    const { feed, publish, clock } = await open({ stepAfterMs: 5000 });
    expect(feed.stepCount).toBeNull();
    expect(feed.symbols).toEqual(['AAA', 'BBB', 'CCC']);
    await publish([payload('AAA', T0, 10), payload('BBB', T0, 20), payload('AAA', T0 + MINUTE, 11)]);
    // CCC has said nothing after T0 yet: the step waits.
    expect(feed.stats()).toMatchObject({ bars: 3 });
    await publish([payload('CCC', T0 + MINUTE, 31), payload('BBB', T0 + MINUTE, 21)]);
    expect(describeSteps(await feed.read(5))).toEqual(['0 +0m AAA:10 BBB:20']);
    // Nobody goes past +1m: it is handed out 5 s after its first bar, without a later bar.
    const pending = feed.read();
    clock.advance(4999);
    await publish([]);
    clock.advance(1);
    expect(describeSteps(await pending)).toEqual(['1 +1m AAA:11 BBB:21 CCC:31']);
    expect(feed.position()).toEqual({ step: 2, lastTimeMs: T0 + MINUTE });
  });

  it('replaces a duplicate bar of a pending step, and drops late bars, counting both', async () => {
    const { logger, records } = capturingLogger();
    const { feed, publish, clock } = await open({ stepAfterMs: 1000, logger, symbols: ['AAA'] });
    await publish([payload('AAA', T0, 10), payload('AAA', T0, 12), payload('AAA', T0 + MINUTE, 13)]);
    expect(describeSteps(await feed.read(5))).toEqual(['0 +0m AAA:12']);
    await publish([payload('AAA', T0, 99)]);
    expect(feed.stats()).toMatchObject({ bars: 3, replaced: 1, late: 1 });
    expect(records.find((record) => record.kind === 'late')).toMatchObject({ symbol: 'AAA', timeMs: T0, lastStepMs: T0 });
    clock.advance(1000);
    expect(describeSteps(await feed.read())).toEqual(['1 +1m AAA:13']);
  });

  it('drops malformed messages and bars of other symbols, saying which field and what it allows, rate-limited, and keeps going', async () => {
    const { logger, records } = capturingLogger();
    const { feed, publish, broker, clock } = await open({ logger, symbols: ['AAA'], stepAfterMs: 0 });
    await publish([
      payload('AAA', T0, 10, { high: 5 }),
      { ...payload('AAA', T0, 10), time: '2024-01-02 14:30' },
      { ...payload('AAA', T0, 10), volume: -1 },
      payload('ZZZ', T0, 10),
    ]);
    broker.publishRaw(topic, JSON.stringify({ v: 1, id: 'x1', type: 'ping', from: 'someone', ts: 0, payload: { seq: 1 } }));
    await broker.flush();
    await publish([{ ...payload('AAA', T0, 10), time: new Date(T0).toISOString() }]);
    clock.advance(0);
    expect(describeSteps(await feed.read())).toEqual(['0 +0m AAA:10']);
    expect(feed.stats()).toMatchObject({ malformed: 4, unknownSymbol: 1, bars: 1 });
    const malformed = records.filter((record) => record.kind === 'malformed');
    // One warning a minute per kind: the first names the field.
    expect(malformed).toHaveLength(1);
    expect(malformed[0]).toMatchObject({ field: 'payload.high', msg: 'bus feed: dropped a malformed bar: payload.high high 5 is below low 9' });
    clock.advance(60_000);
    await publish([{ ...payload('AAA', T0 + MINUTE, 10), time: '2024-01-02 14:31' }]);
    expect(records.filter((record) => record.kind === 'malformed')).toHaveLength(2);
    expect(records.at(-1)).toMatchObject({ field: 'payload.time', suppressedSinceLast: 3 });
    expect(String(records.at(-1)?.msg)).toContain('ISO 8601 date-time with a zone');
  });

  it('resumes after a time: bars at or before it are ignored', async () => {
    const { feed, publish, clock } = await open({ start: { afterTimeMs: T0 + MINUTE }, symbols: ['AAA'], stepAfterMs: 10 });
    await publish([0, 1, 2, 3].map((i) => payload('AAA', T0 + i * MINUTE, 10 + i)));
    clock.advance(10);
    expect(describeSteps(await feed.read(5))).toEqual(['0 +2m AAA:12', '1 +3m AAA:13']);
    expect(feed.stats().late).toBe(2);
  });

  it('drops the oldest unread step past maxBuffered, and close ends a waiting read', async () => {
    const { feed, publish } = await open({ maxBuffered: 2, symbols: ['AAA'] });
    await publish([0, 1, 2, 3, 4].map((i) => payload('AAA', T0 + i * MINUTE, 10 + i)));
    expect(describeSteps(await feed.read(5))).toEqual(['0 +2m AAA:12', '1 +3m AAA:13']);
    expect(feed.stats().droppedSteps).toBe(2);
    const waiting = feed.read();
    await feed.close();
    expect(await waiting).toEqual([]);
  });

  it('refuses invalid options, naming the field', async () => {
    await expect(open({ symbols: [] })).rejects.toThrow(/^symbols: /);
    await expect(open({ stepAfterMs: -1 })).rejects.toThrow(/^stepAfterMs: /);
    await expect(open({ start: { step: 3 } })).rejects.toThrow(/^from\.lastTimeMs: /);
    await expect(open({ topic: '' })).rejects.toBeInstanceOf(InvalidInputError);
  });
});
