import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { SpecError, parseSpec } from '../runspec/index.js';
import { type SwarmSpec, parseSwarmSection, parseSwarmSpec, planOf, requestedTierOf, swarmSpecWarnings } from './spec.js';

const SIZING = { type: 'fixed-quantity', units: 1 };
const SPEC = {
  name: 'swarm-test',
  data: { source: 'synthetic', seed: 7, symbols: ['AAA', 'BBB'], barCount: 60 },
  strategies: [
    { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 3, slowPeriod: 8, sizing: SIZING },
    { type: 'momentum', symbol: 'BBB', lookback: 10, entryThreshold: 0.02, exitThreshold: 0, sizing: SIZING },
    { type: 'mean-reversion', indicator: 'rsi', symbol: 'AAA', period: 5, sizing: SIZING },
  ],
};

/** The bars of `symbol` in a spec's backtest options (always a map when loaded from a spec). */
function barsOf(parsed: SwarmSpec, symbol: string): readonly Bar[] {
  return (parsed.backtest.bars as ReadonlyMap<string, readonly Bar[]>).get(symbol) ?? [];
}

function withSwarm(swarm: unknown): Record<string, unknown> {
  return { ...SPEC, swarm };
}

/** The spec error's problems as `field | value | allowed`, and its message. */
async function rejection(raw: unknown): Promise<{ problems: string[]; message: string }> {
  const error: unknown = await parseSwarmSpec(raw, 'swarm.yaml', '/nonexistent').then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(SpecError);
  const specError = error as SpecError;
  expect(specError.source).toBe('swarm.yaml');
  return { problems: specError.problems.map((p) => `${p.field} | ${JSON.stringify(p.value)} | ${p.allowed}`), message: specError.message };
}

describe('parseSwarmSpec', () => {
  const DEFAULTS = {
    topology: 'mesh',
    pacing: { mode: 'lockstep' },
    routing: 'least-loaded',
    heartbeatMs: 250,
    agentTimeoutMs: 2_000,
    controlPlaneTimeoutMs: 10_000,
    stepTimeoutMs: 5_000,
    maxRestarts: 3,
    restartWindowMs: 600_000,
    standby: false,
    softRestarts: 1,
    recoveryWaitMs: 30_000,
    onLostAgent: 'halt',
    stallTimeoutMs: 60_000,
    checkpointEverySteps: 250,
    healthCheckMs: 1_000,
    maxLagSteps: 10,
    template: 'base',
    resources: { roles: {} },
    feed: { source: 'data', loop: false },
  };

  it.each([
    ['without a swarm section', SPEC],
    ['with an empty swarm section', withSwarm({})],
  ])('fills in every default %s', async (_, raw) => {
    const parsed = await parseSwarmSpec(raw, 'swarm.yaml', '/nonexistent');
    expect(parsed.swarm).toEqual(DEFAULTS);
    expect(parsed.spec.name).toBe('swarm-test');
    expect(parsed.backtest.swarm).toBe('swarm-test');
    expect(parsed.backtest.strategies.map((s) => s.name)).toEqual(['sma-crossover-AAA-3-8', expect.any(String), expect.any(String)]);
    expect([...(parsed.backtest.bars as ReadonlyMap<string, unknown>).keys()].sort()).toEqual(['AAA', 'BBB']);
    expect(barsOf(parsed, 'AAA')).toHaveLength(60);
  });

  it('keeps what is set', async () => {
    const swarm = {
      topology: 'hierarchical',
      coordinators: 3,
      routing: 'capability',
      heartbeatMs: 10,
      agentTimeoutMs: 500,
      controlPlaneTimeoutMs: 100,
      stepTimeoutMs: 20,
      maxRestarts: 0,
      restartWindowMs: 1_000,
      standby: true,
      softRestarts: 0,
      recoveryWaitMs: 100,
      onLostAgent: 'continue',
      stallTimeoutMs: 200,
      checkpointEverySteps: 1,
      healthCheckMs: 0,
      maxLagSteps: 3,
      template: 'agent',
      resources: { default: 'T2', roles: { root: 'T3', coordinator: 'T1' } },
      feed: { source: 'data', loop: true },
    };
    expect((await parseSwarmSpec(withSwarm(swarm))).swarm).toEqual({ ...swarm, pacing: { mode: 'lockstep' } });
  });

  it.each([
    ['lockstep', { mode: 'lockstep' }],
    [{ mode: 'lockstep' }, { mode: 'lockstep' }],
    [{ mode: 'realtime', speed: 100 }, { mode: 'realtime', speed: 100 }],
    [{ mode: 'realtime', speed: 0.5 }, { mode: 'realtime', speed: 0.5 }],
  ])('accepts pacing %j', async (pacing, expected) => {
    expect((await parseSwarmSpec(withSwarm({ pacing }))).swarm.pacing).toEqual(expected);
  });

  it.each(['mesh', 'star', 'hierarchical', 'ring'])('accepts topology %s', async (topology) => {
    expect((await parseSwarmSpec(withSwarm({ topology }))).swarm.topology).toBe(topology);
  });

  it.each([
    [{ topology: 'bus' }, 'swarm.topology | "bus" | must be one of "mesh", "star", "hierarchical", "ring"'],
    [{ heartbeatMs: 5 }, 'swarm.heartbeatMs | 5 | must be >= 10'],
    [{ heartbeatMs: 100.5 }, 'swarm.heartbeatMs | 100.5 | must be an int'],
    [{ controlPlaneTimeoutMs: 99 }, 'swarm.controlPlaneTimeoutMs | 99 | must be >= 100'],
    [{ maxRestarts: 101 }, 'swarm.maxRestarts | 101 | must be <= 100'],
    [{ routing: 'random' }, 'swarm.routing | "random" | must be one of "round-robin", "least-loaded", "capability", "adaptive"'],
    [{ topolgy: 'ring' }, 'swarm.topolgy | "ring" | is not a known field; remove it or check its spelling'],
    [{ topology: 'hierarchical', coordinators: 4 }, 'swarm.coordinators | 4 | must be at most the number of strategies (3)'],
    [{ topology: 'hierarchical', coordinators: 0 }, 'swarm.coordinators | 0 | must be >= 1'],
    [{ coordinators: 2 }, 'swarm.coordinators | 2 | is only used by topology hierarchical (this swarm is mesh); remove it or set swarm.topology: hierarchical'],
    [{ onLostAgent: 'ignore' }, 'swarm.onLostAgent | "ignore" | must be one of "halt", "continue"'],
    [{ recoveryWaitMs: 50 }, 'swarm.recoveryWaitMs | 50 | must be >= 100'],
    [
      { recoveryWaitMs: 5_000, stallTimeoutMs: 5_000 },
      'swarm.stallTimeoutMs | 5000 | must be greater than swarm.recoveryWaitMs (5000): the watchdog would halt a run that is still waiting for a lost agent to come back',
    ],
    [{ topology: 'ring', routing: 'adaptive' }, 'swarm.routing | "adaptive" | is only used by topology hierarchical (this swarm is ring); remove it or set swarm.topology: hierarchical'],
  ])('refuses swarm %j naming the field, the value and what is allowed', async (swarm, expected) => {
    expect((await rejection(withSwarm(swarm))).problems).toEqual([expected]);
  });

  it('says it all in the message', async () => {
    const { message } = await rejection(withSwarm({ topology: 'bus', heartbeatMs: 5 }));
    expect(message).toMatch(/^swarm\.yaml has 2 mistakes; nothing ran/);
    expect(message).toContain('swarm.topology: got "bus"; must be one of "mesh", "star", "hierarchical", "ring"');
    expect(message).toContain('swarm.heartbeatMs: got 5; must be >= 10');
  });

  it.each([{ mode: 'realtime' }, { mode: 'realtime', speed: 0 }, { mode: 'fast' }, 'realtime'])('refuses pacing %j naming swarm.pacing', async (pacing) => {
    const { problems } = await rejection(withSwarm({ pacing }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^swarm\.pacing\b/);
  });

  it('checks the backtest part first (a mistake there is reported before the swarm section is read)', async () => {
    const { problems } = await rejection({ ...withSwarm({ topology: 'bus' }), periodsPerYear: -1 });
    expect(problems).toEqual(['periodsPerYear | -1 | must be > 0']);
  });

  it('a non-object swarm section is a mistake of `swarm`', async () => {
    const { problems } = await rejection(withSwarm('mesh'));
    expect(problems).toEqual(['swarm | "mesh" | must be a record']);
  });

  it('gives each agent the tier of its id, else of its kind, else the default, naming the field that asked', async () => {
    const parsed = await parseSwarmSpec(withSwarm({ topology: 'star', resources: { default: 'T2', roles: { trader: 'T1', '2-momentum-BBB-10': 'T3', hub: 'T4' } } }), 'swarm.yaml', '/nonexistent');
    expect(planOf(parsed).agents.map((agent) => [agent.id, requestedTierOf(parsed.swarm, agent)])).toEqual([
      ['hub', { tier: 'T4', field: 'swarm.resources.roles.hub' }],
      ['1-sma-crossover-AAA-3-8', { tier: 'T1', field: 'swarm.resources.roles.trader' }],
      ['2-momentum-BBB-10', { tier: 'T3', field: 'swarm.resources.roles.2-momentum-BBB-10' }],
      ['3-mean-reversion-rsi-AAA-5', { tier: 'T1', field: 'swarm.resources.roles.trader' }],
    ]);
    const ring = await parseSwarmSpec(withSwarm({ topology: 'ring', resources: { default: 'T2', roles: { decider: 'T3' } } }), 'swarm.yaml', '/nonexistent');
    expect(planOf(ring).agents.map((agent) => `${agent.id}:${requestedTierOf(ring.swarm, agent)?.tier}`)).toEqual(['collector:T2', 'analyser:T2', 'risk-assessor:T3', 'executor:T2']);
    // Naming none leaves the choice to the environment (or `run`'s T1).
    expect(requestedTierOf((await parseSwarmSpec(SPEC, 'swarm.yaml', '/nonexistent')).swarm, planOf(parsed).agents[0]!)).toBeUndefined();
  });

  it.each([
    [{ resources: { default: 'T5' } }, 'swarm.resources.default | "T5" | must be one of "T1", "T2", "T3", "T4"'],
    [{ resources: { roles: { hub: 'large' } } }, 'swarm.resources.roles.hub | "large" | must be one of "T1", "T2", "T3", "T4"'],
    [{ resources: { role: { hub: 'T2' } } }, 'swarm.resources.role | {"hub":"T2"} | is not a known field; remove it or check its spelling'],
    [
      { resources: { roles: { hub: 'T2' } } },
      'swarm.resources.roles.hub | "T2" | names no agent of this mesh swarm; use an agent kind (trader) or an agent id (1-sma-crossover-AAA-3-8, 2-momentum-BBB-10, 3-mean-reversion-rsi-AAA-5)',
    ],
    [
      { topology: 'star', resources: { roles: { executor: 'T2', 'sma-crossover': 'T1' } } },
      'swarm.resources.roles.executor | "T2" | names no agent of this star swarm; use an agent kind (decider, trader) or an agent id (hub, 1-sma-crossover-AAA-3-8, 2-momentum-BBB-10, 3-mean-reversion-rsi-AAA-5)',
    ],
  ])('refuses resources %j naming the field', async (swarm, expected) => {
    expect((await rejection(withSwarm(swarm))).problems[0]).toBe(expected);
  });

  it('parseSwarmSection alone validates the section of an already parsed spec', () => {
    const spec = parseSpec(withSwarm({ topology: 'star' }));
    expect(parseSwarmSection(spec, 'x.yaml').topology).toBe('star');
  });
});

describe('the swarm.feed a deployment reads', () => {
  it('is the spec\'s own data, once, unless it says otherwise', async () => {
    expect((await parseSwarmSpec(withSwarm({}))).swarm.feed).toEqual({ source: 'data', loop: false });
    expect((await parseSwarmSpec(withSwarm({ feed: { source: 'data', loop: true } }))).swarm.feed).toEqual({ source: 'data', loop: true });
    expect((await parseSwarmSpec(withSwarm({ feed: { source: 'bus', stepAfterMs: 2000 } }))).swarm.feed).toEqual({ source: 'bus', stepAfterMs: 2000 });
    expect((await parseSwarmSpec(withSwarm({ feed: { source: 'ccxt', exchange: 'binance', markets: { AAA: 'BTC/USDT' } } }))).swarm.feed).toEqual({
      source: 'ccxt',
      exchange: 'binance',
      markets: { AAA: 'BTC/USDT' },
      timeframe: '1m',
      mode: 'candles',
    });
  });

  it('names each mistake and what is allowed', async () => {
    expect((await rejection(withSwarm({ feed: { source: 'kafka' } }))).problems[0]).toMatch(/^swarm\.feed\.source \| "kafka" \| .*data.*bus.*ccxt/);
    expect((await rejection(withSwarm({ feed: { source: 'ccxt', exchange: 'Binance!' } }))).problems).toEqual([expect.stringMatching(/^swarm\.feed\.exchange \| "Binance!" \| must be a ccxt exchange id such as binance/)]);
    expect((await rejection(withSwarm({ feed: { source: 'bus', loop: true } }))).problems[0]).toMatch(/^swarm\.feed/);
    expect((await rejection(withSwarm({ feed: { source: 'ccxt', exchange: 'binance', mode: 'ticks' } }))).problems[0]).toMatch(/^swarm\.feed\.mode \| "ticks" \| .*candles.*trades/);
  });
});

describe('parseSwarmSpec on CSV data', () => {
  const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-swarm-spec-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  const rows = Array.from({ length: 20 }, (_, i) => `${new Date(Date.UTC(2021, 5, 1 + i)).toISOString().slice(0, 10)},${50 + i},${51 + i},${49 + i},${50 + i},500`);
  writeFileSync(join(folder, 'AAA.csv'), `date,open,high,low,close,volume\n${rows.join('\n')}\n`);
  const csv = (range: Record<string, unknown>): Record<string, unknown> => ({
    data: { source: 'csv', files: [{ path: 'AAA.csv', symbol: 'AAA' }], ...range },
    strategies: [{ type: 'sma-crossover', symbol: 'AAA', fastPeriod: 2, slowPeriod: 3, sizing: SIZING }],
    swarm: { topology: 'star' },
  });

  it('resolves paths against baseDir and keeps the bars from data.from to data.to', async () => {
    const parsed = await parseSwarmSpec(csv({ from: '2021-06-05', to: '2021-06-09' }), 'swarm.yaml', folder);
    expect(parsed.swarm.topology).toBe('star');
    const bars = barsOf(parsed, 'AAA');
    expect(bars.map((bar) => bar.timeMs)).toEqual([5, 6, 7, 8, 9].map((day) => Date.UTC(2021, 5, day)));
  });

  it('names data.from for a bad date', async () => {
    const { problems } = await rejection(csv({ from: '2021-6-5' }));
    expect(problems).toEqual(['data.from | "2021-6-5" | must be a date YYYY-MM-DD']);
  });

  it('a range with no bars is an InvalidInputError naming data.files[0]', async () => {
    const error: unknown = await parseSwarmSpec(csv({ from: '2022-01-01' }), 'swarm.yaml', folder).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'data.files[0]' });
    expect((error as Error).message).toContain('AAA.csv has no bars from 2022-01-01 to the end');
  });
});

describe('tradeswarm backtest and the swarm section', () => {
  it('parseSpec accepts a spec with a swarm section and keeps it as written', () => {
    const swarm = { topology: 'ring', pacing: { mode: 'realtime', speed: 100 }, heartbeatMs: 100 };
    expect(parseSpec(withSwarm(swarm), 'spec.yaml').swarm).toEqual(swarm);
  });

  it('parseSpec does not judge the swarm section (only tradeswarm run does)', () => {
    expect(parseSpec(withSwarm({ topology: 'bus', heartbeatMs: 1 })).swarm).toEqual({ topology: 'bus', heartbeatMs: 1 });
  });
});

describe('swarmSpecWarnings', () => {
  it('warns, as the backtest does, of a strategy whose warm-up is longer than the data', async () => {
    const spec = await parseSwarmSpec({ ...SPEC, strategies: [{ type: 'sma-crossover', symbol: 'AAA', fastPeriod: 3, slowPeriod: 80, sizing: SIZING }] });
    const warnings = swarmSpecWarnings(spec);
    expect(warnings.map(({ source, field, value, barsAvailable }) => ({ source, field, value, barsAvailable }))).toEqual([{ source: 'strategies[0]', field: 'slowPeriod', value: 80, barsAvailable: 60 }]);
    expect(warnings[0]?.message).toMatch(/^strategies\[0\] sma-crossover-AAA-3-80 cannot trade: slowPeriod 80 needs \d+ bars of AAA/);
  });

  it('finds nothing to say of a spec that can trade', async () => {
    expect(swarmSpecWarnings(await parseSwarmSpec(SPEC))).toEqual([]);
  });
});
