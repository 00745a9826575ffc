import { InvalidInputError } from '../core/index.js';
import type { RoutingPolicy } from './routing.js';

/** The four ways a swarm's agents can be wired. */
export const TOPOLOGIES = ['mesh', 'star', 'hierarchical', 'ring'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

/** What an agent does in its topology (the agent runtime's `kind`). */
export type AgentRole = 'trader' | 'coordinator' | 'decider' | 'collector' | 'executor';

/** One strategy of the run, as a plan needs it. */
export interface PlannedStrategy {
  readonly name: string;
  readonly symbols: readonly string[];
  /** What kind of work it can take (its type, e.g. `momentum`): a coordinator routes tasks by it. */
  readonly capability: string;
}

/**
 * One agent of a plan: who it listens to and what it does. Agents only talk to their neighbours:
 * they subscribe to the output topics of `upstream` and `decisionsFrom`, and to nothing else but the
 * control plane.
 */
export interface AgentPlan {
  readonly id: string;
  readonly kind: AgentRole;
  /** What it is called in reports (`hub`, `coordinator`, `risk assessor`, a strategy's name). */
  readonly label: string;
  /** Indexes into the run's strategies of those it runs. */
  readonly strategies: readonly number[];
  /** Whether it runs the decision pipeline. */
  readonly decides: boolean;
  /** Whether it sends orders to the venue. */
  readonly submits: boolean;
  /** Whether it reads the control plane's steps (a ring's later stages get them from upstream). */
  readonly readsSteps: boolean;
  readonly upstream: readonly string[];
  readonly decisionsFrom: readonly string[];
  /** Peers it cannot trade without. */
  readonly requires: readonly string[];
  /** The stages a ring's entry watches. */
  readonly ring: readonly string[];
  /** A coordinator's workers and their capabilities. */
  readonly workers: ReadonlyArray<{ readonly id: string; readonly capabilities: readonly string[] }>;
  readonly capabilities: readonly string[];
}

/** A topology's agents, and which of them must answer a step for it to be done. */
export interface TopologyPlan {
  readonly topology: Topology;
  readonly agents: readonly AgentPlan[];
  /**
   * The agents whose `decision` completes a step: every live trader of a mesh, the hub, the root,
   * the ring's executor.
   */
  readonly deciders: readonly string[];
  /** The agent the run cannot go on without (a star's hub), if any. */
  readonly critical: string | undefined;
  /** A ring's entry, which may refuse steps. */
  readonly entry: string | undefined;
  /**
   * Agents no step can be decided without, each with why (a star's hub, the hierarchy's root, every
   * stage of a ring): losing one for good ends the run whatever the spec's policy.
   */
  readonly essential: Readonly<Record<string, string>>;
}

/** Options of {@link planTopology}. */
export interface PlanOptions {
  readonly topology: Topology;
  readonly strategies: readonly PlannedStrategy[];
  /** Hierarchical: how many coordinators (workers are dealt to them in turn). @default ceil(strategies / 3) */
  readonly coordinators?: number;
  /** Hierarchical: how coordinators route tasks. @default 'least-loaded' */
  readonly routing?: RoutingPolicy;
}

const base = {
  strategies: [] as number[],
  decides: false,
  submits: false,
  readsSteps: true,
  upstream: [] as string[],
  decisionsFrom: [] as string[],
  requires: [] as string[],
  ring: [] as string[],
  workers: [] as Array<{ id: string; capabilities: string[] }>,
  capabilities: [] as string[],
};

/**
 * Wires a run's strategies into agents (DESIGN decision 4: a topology is a graph plus routing rules).
 * - mesh: one agent per strategy; each sends its signals to all peers and decides on its own (they
 *   all reach the same decision); each submits, and the venue accepts each client order id once.
 * - star: one spoke per strategy reports to a hub that decides and submits; spokes require the hub.
 * - hierarchical: one worker per strategy; workers report to coordinators, coordinators to a root
 *   that decides; decisions flow back down through the coordinators.
 * - ring: collector → analyser (every strategy) → risk assessor (decides) → executor (submits) →
 *   back to the collector, whose breaker refuses new steps while a stage is lost.
 * @throws InvalidInputError naming the field.
 */
export function planTopology(options: PlanOptions): TopologyPlan {
  const { topology, strategies } = options;
  if (!(TOPOLOGIES as readonly string[]).includes(topology)) {
    throw new InvalidInputError('topology', `must be one of ${TOPOLOGIES.join(', ')}, got ${JSON.stringify(topology)}`);
  }
  if (strategies.length === 0) throw new InvalidInputError('strategies', 'must list at least one strategy');
  const traderId = (i: number): string => `${i + 1}-${safe((strategies[i] as PlannedStrategy).name)}`;
  const capabilitiesOf = (i: number): string[] => {
    const strategy = strategies[i] as PlannedStrategy;
    return ['indicators', strategy.capability, ...strategy.symbols.map((symbol) => `symbol:${symbol}`)];
  };
  const all = strategies.map((_, i) => i);
  switch (topology) {
    case 'mesh': {
      const ids = all.map(traderId);
      const agents = all.map((i) => ({
        ...base,
        id: ids[i] as string,
        kind: 'trader' as const,
        label: (strategies[i] as PlannedStrategy).name,
        strategies: [i],
        decides: true,
        submits: true,
        upstream: ids.filter((id) => id !== ids[i]),
        capabilities: capabilitiesOf(i),
      }));
      return { topology, agents, deciders: ids, critical: undefined, entry: undefined, essential: {} };
    }
    case 'star': {
      const hub = 'hub';
      const spokes = all.map((i) => ({
        ...base,
        id: traderId(i),
        kind: 'trader' as const,
        label: (strategies[i] as PlannedStrategy).name,
        strategies: [i],
        requires: [hub],
        capabilities: capabilitiesOf(i),
      }));
      const hubPlan: AgentPlan = { ...base, id: hub, kind: 'decider', label: 'hub', decides: true, submits: true, upstream: spokes.map((spoke) => spoke.id) };
      return {
        topology,
        agents: [hubPlan, ...spokes],
        deciders: [hub],
        critical: hub,
        entry: undefined,
        essential: { [hub]: 'the spokes cannot trade without their hub' },
      };
    }
    case 'hierarchical': {
      const count = options.coordinators ?? Math.ceil(strategies.length / 3);
      if (!Number.isInteger(count) || count < 1 || count > strategies.length) {
        throw new InvalidInputError('coordinators', `must be an integer from 1 to the number of strategies (${strategies.length}), got ${count}`);
      }
      const root = 'root';
      const coordinatorIds = Array.from({ length: count }, (_, k) => `coordinator-${k + 1}`);
      const workers = all.map((i) => ({
        ...base,
        id: traderId(i),
        kind: 'trader' as const,
        label: (strategies[i] as PlannedStrategy).name,
        strategies: [i],
        decisionsFrom: [coordinatorIds[i % count] as string],
        capabilities: capabilitiesOf(i),
      }));
      const coordinators = coordinatorIds.map((id, k) => {
        const mine = workers.filter((_, i) => i % count === k);
        return {
          ...base,
          id,
          kind: 'coordinator' as const,
          label: 'coordinator',
          upstream: mine.map((worker) => worker.id),
          decisionsFrom: [root],
          workers: mine.map((worker) => ({ id: worker.id, capabilities: worker.capabilities })),
        };
      });
      const rootPlan: AgentPlan = { ...base, id: root, kind: 'decider', label: 'root', decides: true, submits: true, upstream: coordinatorIds };
      return {
        topology,
        agents: [rootPlan, ...coordinators, ...workers],
        deciders: [root],
        critical: undefined,
        entry: undefined,
        essential: { [root]: 'the root is the hierarchy\'s only decider' },
      };
    }
    case 'ring': {
      const [collector, analyser, risk, executor] = ['collector', 'analyser', 'risk-assessor', 'executor'] as const;
      const stages = [collector, analyser, risk, executor];
      return {
        topology,
        agents: [
          { ...base, id: collector, kind: 'collector', label: 'data collector', decisionsFrom: [executor], ring: stages.filter((id) => id !== collector) },
          { ...base, id: analyser, kind: 'trader', label: 'signal analyser', strategies: all, readsSteps: false, upstream: [collector] },
          { ...base, id: risk, kind: 'decider', label: 'risk assessor', decides: true, readsSteps: false, upstream: [analyser] },
          { ...base, id: executor, kind: 'executor', label: 'executor', submits: true, readsSteps: false, upstream: [risk] },
        ],
        deciders: [executor],
        critical: undefined,
        entry: collector,
        essential: Object.fromEntries(stages.map((id) => [id, 'the ring cannot decide without it'])),
      };
    }
  }
}

/** A strategy name made into a topic segment (letters, digits, `.`, `_`, `-`). */
function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100);
}
