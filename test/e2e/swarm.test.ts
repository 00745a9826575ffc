import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TaskMessage, TaskResultMessage } from '../../src/agent/index.js';
import { runBacktest } from '../../src/backtest/index.js';
import { swarmTopics } from '../../src/bus/index.js';
import { silentLogger } from '../../src/core/index.js';
import { parseSwarmSpec, runSwarm } from '../../src/swarm/index.js';
import { faultAt, outcome } from './swarm-hooks.js';

/**
 * Real swarms: every agent is a Node process started through the e2b SDK in its own local sandbox,
 * talking over the embedded MQTT broker. Small synthetic data keeps each run to a few seconds.
 */

/** Three strategies on two symbols, behind consensus and a risk manager. */
function specFor(swarm: Record<string, unknown>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'e2e',
    data: { source: 'synthetic', seed: 11, symbols: ['AAA', 'BBB'], barCount: 160 },
    strategies: [
      { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 5, slowPeriod: 20, sizing: { type: 'fixed-quantity', units: 10 } },
      { type: 'momentum', symbol: 'BBB', lookback: 10, entryThreshold: 0.01, exitThreshold: 0, sizing: { type: 'fixed-quantity', units: 10 } },
      { type: 'ema-crossover', symbol: 'BBB', fastPeriod: 5, slowPeriod: 20, sizing: { type: 'fixed-quantity', units: 5 } },
    ],
    consensus: { threshold: 'majority' },
    risk: { maxPositionUnits: 100 },
    swarm: { heartbeatMs: 100, agentTimeoutMs: 1_000, ...swarm },
    ...overrides,
  };
}

describe('tradeswarm run: parity with the backtest', () => {
  for (const topology of ['mesh', 'star', 'hierarchical', 'ring'] as const) {
    it(`${topology}: lockstep run gives the backtest's trades, fills and final equity`, async () => {
      const spec = await parseSwarmSpec(specFor({ topology }), `${topology} spec`);
      const report = await runSwarm({ spec, logger: silentLogger });
      const { report: backtest } = runBacktest(spec.backtest);
      expect(report.halted).toBeNull();
      expect(report.outcome).toBe('complete');
      expect(report.steps).toMatchObject({ total: 160, decided: 160 });
      expect(backtest.trades.length).toBeGreaterThan(3);
      expect(backtest.rejections.some((rejection) => rejection.source === 'consensus')).toBe(true);
      expect(outcome(report)).toEqual(outcome(backtest));
      expect(report.pipeline?.consensus).toEqual(backtest.consensus);
      expect(report.agents.every((agent) => agent.status === 'stopped' && agent.errors === 0)).toBe(true);
      // The local cloud's agent template carries the bundle: no sandbox needed an upload.
      expect(report.agents.map((agent) => agent.bundleUploaded)).toEqual(report.agents.map(() => false));
      // ...and its V8 code cache, which every agent's Node accepted.
      expect(report.agents.map((agent) => agent.codeCache)).toEqual(report.agents.map(() => 'used'));
      if (topology === 'mesh') {
        // Every agent decided every step, all the same, and the venue took each order once.
        expect(report.agreement).toMatchObject({ compared: 2 * 160, agreed: 2 * 160 });
        expect(report.latencyMs.allDecided?.count).toBe(160);
        expect(report.duplicateOrders).toBe(2 * backtest.fills.filter((fill) => !fill.clientOrderId.startsWith('end-of-data')).length);
      }
    });
  }
});

describe('tradeswarm run: parity with the backtest on the short side', () => {
  it('mesh: an always-in-the-market crossover (side both) and a short-only momentum sized at the fill price give the backtest\'s trades, fills and final equity', async () => {
    const strategies = [
      { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 5, slowPeriod: 20, side: 'both', sizing: { type: 'fixed-quantity', units: 10 } },
      { type: 'momentum', symbol: 'BBB', lookback: 10, entryThreshold: 0.01, exitThreshold: 0, side: 'short', sizing: { type: 'fraction-of-equity', fraction: 0.2, sizeAt: 'fill-price' } },
      { type: 'ema-crossover', symbol: 'BBB', fastPeriod: 5, slowPeriod: 20, side: 'both', sizing: { type: 'fixed-quantity', units: 5 } },
    ];
    const spec = await parseSwarmSpec(specFor({ topology: 'mesh' }, { strategies }));
    const report = await runSwarm({ spec, logger: silentLogger });
    const { report: backtest } = runBacktest(spec.backtest);
    expect(report.outcome).toBe('complete');
    // Shorts were held, and at least one cross reversed a position (an exit and the opposite entry decided on one step).
    expect(backtest.trades.filter((trade) => trade.direction === 'short').length).toBeGreaterThan(1);
    // Client order ids read swarm:role:barIndex:symbol:intent:hash.
    const decided = new Map<string, string[]>();
    for (const fill of backtest.fills) {
      const [, role, barIndex, , intent] = fill.clientOrderId.split(':');
      const key = `${role}:${barIndex}`;
      decided.set(key, [...(decided.get(key) ?? []), intent ?? '']);
    }
    expect([...decided.values()].some((intents) => intents.join(' ') === 'exit-long enter-short')).toBe(true);
    expect(outcome(report)).toEqual(outcome(backtest));
    expect(report.pipeline?.consensus).toEqual(backtest.consensus);
  });
});

describe('tradeswarm run: parity with the backtest with bracket exits', () => {
  it("mesh: stop-losses, ATR take-profits and trailing stops on long and short entries give the backtest's trades, fills and final equity", async () => {
    const exits = { stopLoss: { percent: 1 }, takeProfit: { atr: { period: 14, multiple: 3 } }, trailingStop: { percent: 3 } };
    const strategies = [
      { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 5, slowPeriod: 20, side: 'both', exits, sizing: { type: 'fixed-quantity', units: 10 } },
      { type: 'momentum', symbol: 'BBB', lookback: 10, entryThreshold: 0.01, exitThreshold: 0, side: 'short', exits: { stopLoss: { points: 1 } }, sizing: { type: 'fraction-of-equity', fraction: 0.2, sizeAt: 'fill-price' } },
      { type: 'ema-crossover', symbol: 'BBB', fastPeriod: 5, slowPeriod: 20, exits: { trailingStop: { atr: { period: 5, multiple: 2 } } }, sizing: { type: 'fixed-quantity', units: 5 } },
    ];
    const spec = await parseSwarmSpec(JSON.parse(JSON.stringify(specFor({ topology: 'mesh' }, { strategies, consensus: undefined }))) as unknown);
    const report = await runSwarm({ spec, logger: silentLogger });
    const { report: backtest } = runBacktest(spec.backtest);
    expect(report.outcome).toBe('complete');
    // Exits filled, of each kind, on both sides; every agent of the mesh submitted the entries, the venue placed each bracket once.
    const kinds = new Set(backtest.fills.map((fill) => /:(stop-loss|take-profit|trailing-stop)$/.exec(fill.clientOrderId)?.[1]).filter((kind) => kind !== undefined));
    expect([...kinds].sort()).toEqual(['stop-loss', 'take-profit', 'trailing-stop']);
    expect(backtest.fills.some((fill) => fill.side === 'buy' && fill.clientOrderId.endsWith(':stop-loss'))).toBe(true);
    expect(outcome(report)).toEqual(outcome(backtest));
  });
});

/**
 * 120 weekday bars from 2022-01-03 with sinusoidal closes (each open the previous close), as CSV;
 * with `hole`, 30 days without bars after the 60th.
 */
function sineCsv(phase: number, hole: boolean): string {
  const rows = ['date,open,high,low,close,volume'];
  let time = Date.UTC(2022, 0, 3);
  let previous = 100;
  for (let n = 0; n < 120; time += 86_400_000) {
    const weekday = new Date(time).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    const close = Number((100 + 8 * Math.sin((n + phase) / 4)).toFixed(2));
    rows.push(`${new Date(time).toISOString().slice(0, 10)},${previous},${(Math.max(previous, close) + 0.5).toFixed(2)},${(Math.min(previous, close) - 0.5).toFixed(2)},${close},1000`);
    previous = close;
    n++;
    if (hole && n === 60) time += 30 * 86_400_000;
  }
  return `${rows.join('\n')}\n`;
}

describe('tradeswarm run: parity with the backtest across a gap in the data', () => {
  it('star: closes the position and cancels the order at the last bar before the gap, as the backtest does', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'swarm-gap-'));
    try {
      await writeFile(join(folder, 'AAA.csv'), sineCsv(1, true));
      await writeFile(join(folder, 'BBB.csv'), sineCsv(3, false));
      const raw = specFor(
        { topology: 'star' },
        {
          data: { source: 'csv', files: [{ path: 'AAA.csv', symbol: 'AAA' }, { path: 'BBB.csv', symbol: 'BBB' }] },
          strategies: [
            { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 3, slowPeriod: 8, sizing: { type: 'fixed-quantity', units: 10 } },
            { type: 'momentum', symbol: 'BBB', lookback: 5, entryThreshold: 0.01, exitThreshold: 0, sizing: { type: 'fixed-quantity', units: 10 } },
          ],
          consensus: undefined,
          gaps: { flatten: true },
        },
      );
      const spec = await parseSwarmSpec(JSON.parse(JSON.stringify(raw)) as unknown, 'gap spec', folder);
      const report = await runSwarm({ spec, logger: silentLogger });
      const { report: backtest } = runBacktest(spec.backtest);
      expect(report.outcome).toBe('complete');
      expect(backtest.gaps).toEqual([
        { symbol: 'AAA', lastBeforeMs: Date.UTC(2022, 2, 25), firstAfterMs: Date.UTC(2022, 3, 25), durationMs: 31 * 86_400_000, usualIntervalMs: 86_400_000, flattened: 10, cancelledOrders: 1 },
      ]);
      expect(backtest.fills.filter((fill) => fill.clientOrderId.startsWith('gap:'))).toHaveLength(1);
      expect(report.gaps).toEqual(backtest.gaps);
      expect(outcome(report)).toEqual(outcome(backtest));
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('tradeswarm run: realtime pacing', () => {
  it('publishes steps at the data\'s spacing divided by speed, without waiting for decisions', async () => {
    // Daily synthetic bars at speed 86_400_000 / 20: one step every 20 ms.
    const spec = await parseSwarmSpec(specFor({ topology: 'mesh', pacing: { mode: 'realtime', speed: 86_400_000 / 20 } }, { data: { source: 'synthetic', seed: 11, symbols: ['AAA', 'BBB'], barCount: 60, barIntervalMs: 86_400_000 } }));
    const report = await runSwarm({ spec, logger: silentLogger });
    expect(report.pacing).toBe(`realtime x${86_400_000 / 20}`);
    expect(report.steps.published).toBe(60);
    expect(report.tradingMs).toBeGreaterThanOrEqual(59 * 20);
    // Every step was decided by someone; a decision that came after the venue moved on is refused as stale, not lost.
    expect(report.steps.decided).toBe(60);
    for (const rejection of report.rejections.filter((r) => r.source === 'venue')) expect(rejection.reason).toBe('stale-bar');
  });
});

describe('tradeswarm run: failure semantics', () => {
  it('mesh: keeps deciding after losing n−2 of n agents', async () => {
    const strategies = ['AAA', 'BBB', 'AAA', 'BBB'].map((symbol, i) => ({
      type: 'sma-crossover',
      name: `sma-${i}`,
      symbol,
      fastPeriod: 3 + i,
      slowPeriod: 15,
      sizing: { type: 'fixed-quantity', units: 1 },
    }));
    const spec = await parseSwarmSpec(specFor({ topology: 'mesh', maxRestarts: 0, onLostAgent: 'continue' }, { strategies, consensus: undefined }));
    const { hit: killed, ...hooks } = faultAt(40, (plan) => plan.agents.slice(0, 2).map((agent) => agent.id));
    const report = await runSwarm({ spec, logger: silentLogger, ...hooks });
    expect(report.halted).toBeNull();
    expect(report.outcome).toBe('degraded');
    expect(report.absences.map((absence) => absence.agent).sort()).toEqual([...killed].sort());
    expect(report.steps).toMatchObject({ total: 160, decided: 160 });
    expect(report.events.filter((event) => event.kind === 'lost').map((event) => event.agent).sort()).toEqual([...killed].sort());
    const survivors = report.agents.filter((agent) => !killed.includes(agent.id));
    expect(survivors).toHaveLength(2);
    for (const agent of survivors) expect(agent.decisions).toBe(160);
    // The survivors' own strategies still trade after the loss.
    const lateFills = report.fills.filter((fill) => survivors.some((agent) => fill.clientOrderId.includes(`:${agent.label}:`)) && Number(fill.clientOrderId.split(':')[2]) > 45);
    expect(lateFills.length).toBeGreaterThan(0);
  });

  it('star: the spokes stop trading when the hub is killed, and the report says so', async () => {
    const spec = await parseSwarmSpec(specFor({ topology: 'star' }));
    const report = await runSwarm({ spec, logger: silentLogger, ...faultAt(30, () => ['hub']) });
    expect(report.halted).not.toBeNull();
    expect(report.outcome).toBe('halted');
    expect(report.halted?.reason).toMatch(/hub hub lost/);
    expect(report.halted?.atStep).toBeGreaterThanOrEqual(30);
    expect(report.steps.decided).toBeLessThan(160);
    expect(report.events.map((event) => event.kind)).toEqual(expect.arrayContaining(['lost', 'halted']));
    expect(report.agents.find((agent) => agent.id === 'hub')?.status).toBe('lost');
  });

  it('ring: a killed stage trips the breaker, work is refused, and the ring resumes when the stage is back', async () => {
    const spec = await parseSwarmSpec(specFor({ topology: 'ring' }));
    const report = await runSwarm({ spec, logger: silentLogger, ...faultAt(50, () => ['analyser']) });
    expect(report.halted).toBeNull();
    expect(report.steps).toMatchObject({ total: 160, decided: 160 });
    expect(report.steps.refused).toBeGreaterThan(0);
    const kinds = report.events.filter((event) => event.agent === 'analyser' || event.kind === 'refused').map((event) => event.kind);
    expect(kinds).toEqual(expect.arrayContaining(['lost', 'refused', 'restarted']));
    expect(report.agents.find((agent) => agent.id === 'analyser')?.restarts).toBe(1);
    // Replay rebuilt the analyser's indicators, and lockstep retried the refused steps: the run
    // still matches the backtest.
    expect(outcome(report)).toEqual(outcome(runBacktest(spec.backtest).report));
  });

  it('hierarchical: a coordinator routes 100 tasks over 5 equal workers by capability with < 5 % imbalance', async () => {
    const strategies = [0, 1, 2, 3, 4].map((i) => ({
      type: 'sma-crossover',
      name: `worker-${i}`,
      symbol: 'AAA',
      fastPeriod: 3 + i,
      slowPeriod: 20,
      sizing: { type: 'fixed-quantity', units: 1 },
    }));
    const spec = await parseSwarmSpec(specFor({ topology: 'hierarchical', coordinators: 1, routing: 'capability' }, { strategies, consensus: undefined }));
    const perWorker = new Map<string, number>();
    let wrong = 0;
    await runSwarm({
      spec,
      logger: silentLogger,
      onReady: async ({ bus, swarmId }) => {
        const topics = swarmTopics(swarmId);
        const closes = Array.from({ length: 50 }, (_, i) => 100 + Math.sin(i / 3) * 5);
        const answers = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            bus.request(topics.inbox('coordinator-1'), TaskMessage.draft({ id: `t${i}`, capability: 'sma-crossover', indicator: 'sma', period: 10, values: closes }), { timeoutMs: 20_000 }),
          ),
        );
        const expected = closes.slice(-10).reduce((sum, value) => sum + value, 0) / 10;
        for (const answer of answers) {
          if (!TaskResultMessage.is(answer)) throw new Error(`unexpected ${answer.type}`);
          if (Math.abs((answer.payload.value ?? Number.NaN) - expected) > 1e-9) wrong += 1;
          perWorker.set(answer.payload.worker, (perWorker.get(answer.payload.worker) ?? 0) + 1);
        }
      },
    });
    expect(wrong).toBe(0);
    expect(perWorker.size).toBe(5);
    const counts = [...perWorker.values()];
    const mean = 100 / 5;
    for (const count of counts) expect(Math.abs(count - mean) / mean).toBeLessThan(0.05);
  });
});
