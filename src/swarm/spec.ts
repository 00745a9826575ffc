import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { Bar } from '../market/index.js';
import { type RunOptions, type RunWarning, type Spec, SpecError, type SyntheticData, loadSpec, parseSpec, parseSpecText, runOptionsFromSpec, runOptionsWithBars, specProblemOf, syntheticDataOf, warmUpWarnings } from '../runspec/index.js';
import { TIER_NAMES, type TierName } from '../sandbox/index.js';
import { buildStrategy } from '../strategy/index.js';
import { type AgentPlan, ROUTING_POLICIES, TOPOLOGIES, type TopologyPlan, planTopology } from '../topology/index.js';

/**
 * The `swarm:` section of a spec: how `tradeswarm run` deploys the strategies. Everything else in
 * the spec (data, strategies, risk, allocator, venue, portfolio) is shared with `tradeswarm backtest`.
 */
export const swarmSectionSchema = z
  .strictObject({
    topology: z.enum(TOPOLOGIES).default('mesh'),
    /**
     * `lockstep`: step t+1 is published only after step t was decided (a run then matches the
     * backtest trade for trade). `realtime`: steps follow the data's own spacing divided by `speed`;
     * late decisions meet a venue that has moved on.
     */
    pacing: z
      .union([
        z.literal('lockstep').transform(() => ({ mode: 'lockstep' as const })),
        z.strictObject({ mode: z.literal('lockstep') }),
        z.strictObject({ mode: z.literal('realtime'), speed: z.number().positive() }),
      ])
      .default({ mode: 'lockstep' }),
    /** Hierarchical: number of coordinators. @default ceil(strategies / 3) */
    coordinators: z.int().min(1).optional(),
    /** Hierarchical: how coordinators route tasks to workers. */
    routing: z.enum(ROUTING_POLICIES).default('least-loaded'),
    heartbeatMs: z.int().min(10).max(60_000).default(250),
    /** A silent agent counts as lost after this long. */
    agentTimeoutMs: z.int().min(50).max(600_000).default(2_000),
    /** Agents exit when they hear nothing from the control plane this long. */
    controlPlaneTimeoutMs: z.int().min(100).max(3_600_000).default(10_000),
    /** Lockstep: the longest wait for a step's decisions before liveness is checked again. */
    stepTimeoutMs: z.int().min(10).max(600_000).default(5_000),
    /**
     * How often one agent may be restarted within `restartWindowMs` before it stays lost (a star's
     * hub is never restarted): a crash loop ends, while a deployment that runs for days is not
     * halted by losses far apart.
     */
    maxRestarts: z.int().min(0).max(100).default(3),
    restartWindowMs: z.int().min(1_000).max(604_800_000).default(600_000),
    /**
     * A hot standby per agent, each in a sandbox of its own, following its agent's checkpoints; when
     * the agent is lost, its standby takes over (failover, the ladder's first rung, a star's hub
     * included) and a new standby is started. Where the environment fails over by itself (prod, `run`).
     */
    standby: z.boolean().default(false),
    /** The recovery ladder: tries in the agent's own sandbox (a soft restart) before new sandboxes (hard restarts). */
    softRestarts: z.int().min(0).max(100).default(1),
    /**
     * Lockstep: how long the swarm waits for a lost agent to come back (restarted, its state
     * replayed) before it counts as lost for good. Meanwhile no step is decided without it.
     */
    recoveryWaitMs: z.int().min(100).max(3_600_000).default(30_000),
    /**
     * What a run does once an agent is lost for good: `halt` stops it with a report; `continue`
     * decides the following steps without the agent, and the report lists those steps (the run is
     * then `degraded`). An agent the topology cannot decide without (a star's hub, the hierarchy's
     * root, any stage of a ring) halts the run either way.
     */
    onLostAgent: z.enum(['halt', 'continue']).default('halt'),
    /**
     * Lockstep watchdog: a run in which no step was decided for this long halts, with a report of
     * where it stood and whom it waited for. Longer than `recoveryWaitMs`.
     */
    stallTimeoutMs: z.int().min(200).max(86_400_000).default(60_000),
    checkpointEverySteps: z.int().min(1).default(250),
    /**
     * How often every agent's health is checked: its sandbox through the provider (running, paused,
     * gone; CPU and memory against its limits) and the agent's own report (last step, errors,
     * checkpoint). 0 turns the checks off; heartbeats and last wills still find a lost agent.
     */
    healthCheckMs: z.union([z.literal(0), z.int().min(10).max(600_000)]).default(1_000),
    /** An agent this many steps behind the feed is unhealthy (realtime pacing: a slow agent falls behind). */
    maxLagSteps: z.int().min(1).max(1_000_000).default(10),
    /** The sandbox template agents run in. */
    template: z.string().min(1).default('base'),
    /**
     * The resource tier of each agent's sandbox (T1: 1 core, 512 MB, 1 GB disk; T2: 2 cores, 1.5 GB,
     * 5 GB; T3: 4 cores, 2 GB, 10 GB; T4: 8 cores, 4 GB, 20 GB), by role. A key of `roles` is an agent's
     * id as `status` lists it (`hub`, `root`, `coordinator-1`, `risk-assessor`, a strategy's
     * `1-<name>`) or an agent kind (`trader`, `coordinator`, `decider`, `collector`, `executor`), and
     * must name an agent of this swarm. An agent gets the tier of its id, else of its kind, else
     * `default`, else its environment's smallest allowed tier (`run`, which has no environment: T1).
     * `serve` refuses a tier the deployment's environment does not allow. A standby gets its agent's.
     */
    resources: z
      .strictObject({
        default: z.enum(TIER_NAMES).optional(),
        roles: z.record(z.string().min(1), z.enum(TIER_NAMES)).default({}),
      })
      .prefault({}),
    /**
     * Where the market steps come from (see feeds.ts): `data`, the spec's own data (CSV replay or the
     * synthetic market), once or looping for ever; `bus`, bars anyone publishes on the deployment's
     * topic `ts/<deployment>/market/bars`; `ccxt`, a public exchange's candles or trades. A live feed
     * serves the data's symbols (the spec still backtests on its data).
     */
    feed: z
      .discriminatedUnion('source', [
        z.strictObject({ source: z.literal('data'), loop: z.boolean().default(false) }),
        z.strictObject({
          source: z.literal('bus'),
          /** A step goes out this long after its first bar, even if a symbol sent nothing newer. */
          stepAfterMs: z.int().min(1).max(86_400_000).optional(),
          maxBuffered: z.int().min(1).max(1_000_000).optional(),
        }),
        z.strictObject({
          source: z.literal('ccxt'),
          /** A ccxt exchange id, e.g. `binance`. */
          exchange: z.string().regex(/^[a-z0-9]+$/, 'must be a ccxt exchange id such as binance'),
          /** The exchange's unified symbol of each data symbol, e.g. `{ BTCUSDT: BTC/USDT }`; a data symbol left out is its own. */
          markets: z.record(z.string().min(1), z.string().min(1)).optional(),
          timeframe: z.string().min(2).default('1m'),
          mode: z.enum(['candles', 'trades']).default('candles'),
          pollMs: z.int().min(100).max(3_600_000).optional(),
          /** The exchange's API base URL, for a proxy or a recorded exchange (tests). */
          apiUrl: z.url().optional(),
        }),
      ])
      .default({ source: 'data', loop: false }),
  })
  // An absent section is parsed as `{}`, so every field's own default applies (stated once, above).
  .prefault({});

/** Fields of the `swarm:` section that only the hierarchical topology uses. */
const HIERARCHICAL_ONLY = ['coordinators', 'routing'] as const;

/** A validated `swarm:` section, defaults filled in. */
export type SwarmSection = z.output<typeof swarmSectionSchema>;

/** A spec ready for `tradeswarm run`: the part `tradeswarm backtest` also reads, and the swarm section. */
export interface SwarmSpec {
  readonly spec: Spec;
  readonly swarm: SwarmSection;
  /**
   * The data, strategies and account options, exactly as `tradeswarm backtest` would run them; with
   * {@link SwarmSpec.streamed}, everything but the data (`bars` is then empty).
   */
  readonly backtest: RunOptions;
  /**
   * Set when the spec was parsed with `streamData` and its data is a synthetic market the swarm's
   * feed replays once: the feed makes its bars as it reads them (see `openSwarmFeed`), none is held.
   * Its bars come at even intervals, so it has no data gaps, as `runGaps` finds of the empty `bars`;
   * {@link swarmSpecWarnings} counts its bars from here.
   */
  readonly streamed?: SyntheticData;
}

/** Options of {@link parseSwarmSpecText}. */
export interface ParseSwarmSpecOptions {
  /**
   * Where the data is a synthetic market replayed once by `swarm.feed` (the default feed), leave its
   * bars to be made as the feed reads them ({@link SwarmSpec.streamed}) instead of generating them
   * all now: a deployment resumed at step k then makes k bars before it trades again, not the
   * whole market. Only for a spec that is deployed and nothing else: its `backtest.bars` is empty.
   * @default false
   */
  readonly streamData?: boolean;
}

/**
 * Validates the swarm section of a parsed spec.
 * @throws SpecError naming each field under `swarm.`.
 */
export function parseSwarmSection(spec: Spec, source: string): SwarmSection {
  const result = swarmSectionSchema.safeParse(spec.swarm);
  if (!result.success) {
    throw new SpecError(
      source,
      result.error.issues.map((issue) => {
        const problem = specProblemOf({ ...issue, path: ['swarm', ...issue.path] }, { swarm: spec.swarm });
        return problem;
      }),
    );
  }
  const section = result.data;
  if (section.topology === 'hierarchical' && section.coordinators !== undefined && section.coordinators > spec.strategies.length) {
    throw new SpecError(source, [
      { field: 'swarm.coordinators', value: section.coordinators, allowed: `must be at most the number of strategies (${spec.strategies.length})` },
    ]);
  }
  if (section.stallTimeoutMs <= section.recoveryWaitMs) {
    throw new SpecError(source, [
      {
        field: 'swarm.stallTimeoutMs',
        value: section.stallTimeoutMs,
        allowed: `must be greater than swarm.recoveryWaitMs (${section.recoveryWaitMs}): the watchdog would halt a run that is still waiting for a lost agent to come back`,
      },
    ]);
  }
  // Settings only the hierarchical topology reads would be silently ignored by the others.
  const written = typeof spec.swarm === 'object' && spec.swarm !== null ? spec.swarm : {};
  const ignored = HIERARCHICAL_ONLY.filter((field) => section.topology !== 'hierarchical' && written[field] !== undefined);
  if (ignored.length > 0) {
    throw new SpecError(
      source,
      ignored.map((field) => ({ field: `swarm.${field}`, value: written[field], allowed: `is only used by topology hierarchical (this swarm is ${section.topology}); remove it or set swarm.topology: hierarchical` })),
    );
  }
  return section;
}

/**
 * Validates a parsed spec (an object, as from YAML) for `tradeswarm run` and loads its data; CSV
 * paths resolve relative to `baseDir`.
 * @throws SpecError listing every mistake.
 */
export async function parseSwarmSpec(raw: unknown, source = 'swarm spec', baseDir = process.cwd()): Promise<SwarmSpec> {
  const spec = parseSpec(raw, source);
  const swarm = parseSwarmSection(spec, source);
  return checkedRoles({ spec, swarm, backtest: await runOptionsFromSpec(spec, baseDir) }, source);
}

/**
 * Validates a spec given as YAML text (as `tradeswarm deploy` sends it) and loads its data (unless
 * `options.streamData` leaves it to the feed); CSV paths resolve relative to `baseDir`.
 * @throws SpecError listing every mistake.
 */
export async function parseSwarmSpecText(text: string, source: string, baseDir: string, options: ParseSwarmSpecOptions = {}): Promise<SwarmSpec> {
  const spec = parseSpecText(text, source);
  const swarm = parseSwarmSection(spec, source);
  const streamed = options.streamData === true && swarm.feed.source === 'data' && !swarm.feed.loop ? syntheticDataOf(spec) : undefined;
  if (streamed !== undefined) return checkedRoles({ spec, swarm, backtest: runOptionsWithBars(spec, new Map()), streamed }, source);
  return checkedRoles({ spec, swarm, backtest: await runOptionsFromSpec(spec, baseDir) }, source);
}

/**
 * Reads a spec file for `tradeswarm run`: the whole spec is checked (the part `tradeswarm backtest`
 * reads, and the swarm section) before anything starts, and the data is loaded.
 * @throws SpecError listing every mistake.
 */
export async function loadSwarmSpec(file: string): Promise<SwarmSpec> {
  const spec = await loadSpec(file);
  const swarm = parseSwarmSection(spec, file);
  const backtest = await runOptionsFromSpec(spec, dirname(resolve(file)));
  return checkedRoles({ spec, swarm, backtest }, file);
}

/** The agents a spec deploys, and how they are wired (its topology's plan). */
export function planOf(swarmSpec: SwarmSpec): TopologyPlan {
  const { spec, swarm: section, backtest } = swarmSpec;
  return planTopology({
    topology: section.topology,
    strategies: spec.strategies.map((entry, i) => {
      const built = backtest.strategies[i] ?? buildStrategy(entry);
      return { name: built.name, symbols: built.symbols ?? [], capability: entry.type };
    }),
    ...(section.coordinators === undefined ? {} : { coordinators: section.coordinators }),
    routing: section.routing,
  });
}

/** A tier a spec asks for, and the field that asks (for errors). */
export interface RequestedTier {
  readonly tier: TierName;
  /** `swarm.resources.roles.<id or kind>` or `swarm.resources.default`. */
  readonly field: string;
}

/**
 * The tier `swarm.resources` asks for `agent`: its id's, else its kind's, else the default; undefined
 * when it names none (the agent then gets its environment's smallest allowed tier).
 */
export function requestedTierOf(section: SwarmSection, agent: AgentPlan): RequestedTier | undefined {
  const { roles } = section.resources;
  for (const key of [agent.id, agent.kind]) {
    const tier = Object.hasOwn(roles, key) ? roles[key] : undefined;
    if (tier !== undefined) return { tier, field: `swarm.resources.roles.${key}` };
  }
  return section.resources.default === undefined ? undefined : { tier: section.resources.default, field: 'swarm.resources.default' };
}

/**
 * `swarmSpec`, once every key of `swarm.resources.roles` names an agent of its plan, by id or kind.
 * @throws SpecError naming each key that names none, with the kinds and ids there are.
 */
function checkedRoles(swarmSpec: SwarmSpec, source: string): SwarmSpec {
  const { roles } = swarmSpec.swarm.resources;
  if (Object.keys(roles).length === 0) return swarmSpec;
  const { agents, topology } = planOf(swarmSpec);
  const kinds = [...new Set(agents.map((agent) => agent.kind))];
  const ids = agents.map((agent) => agent.id);
  const unknown = Object.keys(roles).filter((key) => !kinds.includes(key as AgentPlan['kind']) && !ids.includes(key));
  if (unknown.length > 0) {
    throw new SpecError(
      source,
      unknown.map((key) => ({
        field: `swarm.resources.roles.${key}`,
        value: roles[key],
        allowed: `names no agent of this ${topology} swarm; use an agent kind (${kinds.join(', ')}) or an agent id (${ids.join(', ')})`,
      })),
    );
  }
  return swarmSpec;
}

/**
 * What a spec will not do as written (a strategy whose warm-up is longer than the data), as
 * `tradeswarm backtest` finds it; the run goes on.
 */
export function swarmSpecWarnings(spec: SwarmSpec): RunWarning[] {
  const { bars, strategies, allocator } = spec.backtest;
  const counts = new Map<string, number>();
  for (const symbol of spec.streamed?.symbols ?? []) counts.set(symbol, spec.streamed?.barCount ?? 0);
  const all: readonly Bar[] = Array.isArray(bars) ? bars : [...(bars as ReadonlyMap<string, readonly Bar[]>).values()].flat();
  for (const bar of all) counts.set(bar.symbol, (counts.get(bar.symbol) ?? 0) + 1);
  return warmUpWarnings(strategies, allocator, (symbol) => counts.get(symbol) ?? 0);
}
