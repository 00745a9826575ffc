import { InvalidInputError } from '../core/index.js';

/** The routing policies of {@link createRouter}, in the order of {@link RoutingPolicy}'s documentation. */
export const ROUTING_POLICIES = ['round-robin', 'least-loaded', 'capability', 'adaptive'] as const;

/**
 * How a {@link Router} chooses a target for a task. In every policy a task that names a capability
 * goes only to targets that have it (the filter is universal); what differs is the choice among
 * the eligible targets:
 * - `round-robin`: the next eligible target after the last one picked, in the order they were added.
 * - `least-loaded`: the lowest `inFlight / capacity`.
 * - `capability`: the capability filter, then the lowest `inFlight / capacity`. Because the filter
 *   applies to every policy, it chooses exactly as `least-loaded` does; it exists so a spec can
 *   say what it relies on.
 * - `adaptive`: the highest score `(1 − errorRate) / (1 + inFlight / capacity)`, `errorRate` over
 *   the target's last `errorWindow` outcomes (0 before any); every `probeEvery`-th pick instead goes
 *   to the eligible target picked least recently (never picked counts as least recent), so a
 *   failing target is still tried now and then and gets traffic again once it recovers.
 *
 * Ties go to the first tied target at or after a rotating cursor (the position after the last
 * target picked), so equal targets share work evenly. No randomness: the same calls always give
 * the same picks.
 */
export type RoutingPolicy = (typeof ROUTING_POLICIES)[number];

/** Options of {@link createRouter}. */
export interface RouterOptions {
  policy: RoutingPolicy;
  /** Outcomes kept per target for its error rate; a whole number >= 1. @default 20 */
  errorWindow?: number;
  /**
   * `adaptive`: every this-many-th pick goes to the eligible target picked least recently; a whole
   * number >= 1 (1: every pick does), or `Infinity` never to probe. Other policies ignore it. @default 10
   */
  probeEvery?: number;
}

/** The compiled, complete form of {@link RouterOptions}. */
export interface RouterConfig {
  readonly policy: RoutingPolicy;
  readonly errorWindow: number;
  readonly probeEvery: number;
}

/** A worker a router may hand tasks to. */
export interface RouteTarget {
  /** Unique within the router. */
  readonly id: string;
  /** What it can do; tasks naming a capability go only to targets listing it. @default none */
  readonly capabilities?: readonly string[];
  /**
   * Concurrent tasks it handles well (> 0): load is `inFlight / capacity`. Not a hard limit: a
   * router never refuses a task because every target is busy. @default 1
   */
  readonly capacity?: number;
}

/** What a task asks of its target. */
export interface RouteTask {
  /** Only targets with this capability may take it. @default any target */
  readonly capability?: string;
}

/** How a dispatched task ended. */
export interface RouteOutcome {
  readonly ok: boolean;
}

/** One target's counters, from {@link Router.snapshot}. */
export interface RouteTargetSnapshot {
  readonly id: string;
  readonly capabilities: readonly string[];
  readonly capacity: number;
  /** Dispatched and not yet completed. */
  readonly inFlight: number;
  /** Tasks dispatched to it, ever. */
  readonly dispatched: number;
  /** Outcomes recorded for it, ever (successes and failures). */
  readonly completed: number;
  /** Of those, failures. */
  readonly failed: number;
  /** Failures among its last `errorWindow` outcomes / their number; 0 before any. */
  readonly errorRate: number;
  /** Whether it is picked at all (see {@link Router.setHealthy}). */
  readonly healthy: boolean;
}

/**
 * Hands tasks to targets (workers) for a coordinator, by a {@link RoutingPolicy}. The coordinator
 * asks {@link Router.pick} for a target, tells it {@link Router.dispatched} when it sends the task
 * and {@link Router.completed} when the answer comes. Deterministic: it reads no clock and no
 * randomness.
 */
export interface Router {
  readonly config: RouterConfig;
  /**
   * Adds a target after the others (counters at 0).
   * @throws InvalidInputError naming `target.id` (missing or already added), `target.capabilities`
   *   or `target.capacity`.
   */
  add(target: RouteTarget): void;
  /** Removes a target and its counters; late {@link Router.completed} calls for it are ignored. @returns whether it was there. */
  remove(id: string): boolean;
  has(id: string): boolean;
  /**
   * The target for `task` by the policy, or `undefined` when no target is eligible (none added, or
   * none with the task's capability). It advances the tie-breaking cursor and the pick count (for
   * `adaptive` probes) but not the counters: call {@link Router.dispatched} when the task is sent.
   * @throws InvalidInputError naming `task.capability` when it is not a non-empty string.
   */
  pick(task?: RouteTask): string | undefined;
  /**
   * A task was sent to `id`: in-flight + 1.
   * @throws InvalidInputError naming `id` when no such target was added (or it was removed).
   */
  dispatched(id: string): void;
  /**
   * A task of `id` ended: in-flight − 1 (never below 0) and the outcome recorded. An unknown id is
   * ignored: a removed worker's late answers can arrive.
   */
  completed(id: string, outcome: RouteOutcome): void;
  /** Every target's counters, in the order they were added. */
  snapshot(): RouteTargetSnapshot[];
  /**
   * Takes a target out of the picks while it is not healthy (a worker lost, silent or still catching
   * up), and back once it is; its counters stay. An unknown id is ignored. Targets start healthy.
   */
  setHealthy(id: string, healthy: boolean): void;
}

/** Slack when comparing adaptive scores, so targets equal on paper tie (and rotate) despite rounding. */
const SCORE_EPSILON = 1e-12;

/**
 * Fills in defaults and checks every option.
 * @throws InvalidInputError naming `policy`, `errorWindow` or `probeEvery`.
 */
export function compileRouterOptions(options: RouterOptions): RouterConfig {
  const policy: unknown = options?.policy;
  if (!ROUTING_POLICIES.includes(policy as RoutingPolicy)) {
    throw new InvalidInputError('policy', `must be one of ${ROUTING_POLICIES.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(policy)}`);
  }
  const errorWindow: unknown = options.errorWindow ?? 20;
  if (typeof errorWindow !== 'number' || !Number.isSafeInteger(errorWindow) || errorWindow < 1) {
    throw new InvalidInputError('errorWindow', `must be a whole number of outcomes >= 1, got ${String(errorWindow)}`);
  }
  const probeEvery: unknown = options.probeEvery ?? 10;
  if (typeof probeEvery !== 'number' || (probeEvery !== Infinity && !Number.isSafeInteger(probeEvery)) || probeEvery < 1) {
    throw new InvalidInputError('probeEvery', `must be a whole number of picks >= 1 (or Infinity never to probe), got ${String(probeEvery)}`);
  }
  return Object.freeze({ policy: policy as RoutingPolicy, errorWindow, probeEvery });
}

interface TargetState {
  readonly id: string;
  readonly capabilities: readonly string[];
  readonly capacity: number;
  inFlight: number;
  dispatched: number;
  completed: number;
  failed: number;
  /** The last `errorWindow` outcomes, oldest first; true = failure. */
  readonly recent: boolean[];
  /** Failures in `recent`. */
  recentFailures: number;
  /** The pick count when it was last picked; 0 when never. */
  lastPicked: number;
  healthy: boolean;
}

class PolicyRouter implements Router {
  readonly config: RouterConfig;
  readonly #targets: TargetState[] = [];
  /** Index into `#targets` where the tie-break search starts: the one after the last picked. */
  #cursor = 0;
  #picks = 0;

  constructor(options: RouterOptions) {
    this.config = compileRouterOptions(options);
  }

  add(target: RouteTarget): void {
    const id: unknown = target?.id;
    if (typeof id !== 'string' || id.trim() === '') throw new InvalidInputError('target.id', `must be a non-empty string, got ${JSON.stringify(id)}`);
    if (this.has(id)) throw new InvalidInputError('target.id', `${JSON.stringify(id)} is already a target; ids must be unique (remove it first to replace it)`);
    const capabilities: unknown = target.capabilities ?? [];
    if (!Array.isArray(capabilities) || capabilities.some((capability) => typeof capability !== 'string' || capability === '')) {
      throw new InvalidInputError('target.capabilities', `must be a list of non-empty strings, got ${JSON.stringify(capabilities)}`);
    }
    const capacity: unknown = target.capacity ?? 1;
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) {
      throw new InvalidInputError('target.capacity', `must be a finite number > 0 (concurrent tasks it handles well), got ${String(capacity)}`);
    }
    this.#targets.push({
      id,
      capabilities: Object.freeze([...new Set(capabilities as string[])]),
      capacity,
      inFlight: 0,
      dispatched: 0,
      completed: 0,
      failed: 0,
      recent: [],
      recentFailures: 0,
      lastPicked: 0,
      healthy: true,
    });
  }

  remove(id: string): boolean {
    const index = this.#targets.findIndex((target) => target.id === id);
    if (index === -1) return false;
    this.#targets.splice(index, 1);
    // Keep the cursor on the same next target.
    if (index < this.#cursor) this.#cursor -= 1;
    if (this.#cursor >= this.#targets.length) this.#cursor = 0;
    return true;
  }

  has(id: string): boolean {
    return this.#targets.some((target) => target.id === id);
  }

  pick(task: RouteTask = {}): string | undefined {
    const capability: unknown = task?.capability;
    if (capability !== undefined && (typeof capability !== 'string' || capability === '')) {
      throw new InvalidInputError('task.capability', `must be a non-empty string when given, got ${JSON.stringify(capability)}`);
    }
    const count = this.#targets.length;
    // Eligible targets in tie-break order: from the cursor on, wrapping around.
    const eligible: TargetState[] = [];
    for (let k = 0; k < count; k++) {
      const target = this.#targets[(this.#cursor + k) % count] as TargetState;
      if (target.healthy && (capability === undefined || target.capabilities.includes(capability))) eligible.push(target);
    }
    if (eligible.length === 0) return undefined;
    this.#picks += 1;
    const chosen = this.choose(eligible);
    chosen.lastPicked = this.#picks;
    this.#cursor = (this.#targets.indexOf(chosen) + 1) % count;
    return chosen.id;
  }

  dispatched(id: string): void {
    const target = this.#targets.find((t) => t.id === id);
    if (target === undefined) throw new InvalidInputError('id', `${JSON.stringify(id)} is not a target of this router (add it first)`);
    target.inFlight += 1;
    target.dispatched += 1;
  }

  completed(id: string, outcome: RouteOutcome): void {
    const target = this.#targets.find((t) => t.id === id);
    if (target === undefined) return;
    const failed = outcome?.ok !== true;
    target.inFlight = Math.max(0, target.inFlight - 1);
    target.completed += 1;
    if (failed) target.failed += 1;
    target.recent.push(failed);
    if (failed) target.recentFailures += 1;
    if (target.recent.length > this.config.errorWindow && target.recent.shift() === true) target.recentFailures -= 1;
  }

  setHealthy(id: string, healthy: boolean): void {
    const target = this.#targets.find((t) => t.id === id);
    if (target !== undefined) target.healthy = healthy;
  }

  snapshot(): RouteTargetSnapshot[] {
    return this.#targets.map((target) => ({
      id: target.id,
      healthy: target.healthy,
      capabilities: target.capabilities,
      capacity: target.capacity,
      inFlight: target.inFlight,
      dispatched: target.dispatched,
      completed: target.completed,
      failed: target.failed,
      errorRate: errorRate(target),
    }));
  }

  /** The policy's choice among `eligible` (non-empty, in tie-break order): the first best. */
  private choose(eligible: readonly TargetState[]): TargetState {
    const { policy, probeEvery } = this.config;
    if (policy === 'round-robin') return eligible[0] as TargetState;
    if (policy === 'adaptive') {
      if (this.#picks % probeEvery === 0) return firstBest(eligible, (target) => -target.lastPicked, 0);
      return firstBest(eligible, (target) => (1 - errorRate(target)) / (1 + load(target)), SCORE_EPSILON);
    }
    return firstBest(eligible, (target) => -load(target), 0);
  }
}

/**
 * A router with no targets yet (see {@link Router} and {@link RoutingPolicy}).
 * @throws InvalidInputError naming the field of a bad option.
 */
export function createRouter(options: RouterOptions): Router {
  return new PolicyRouter(options);
}

function load(target: TargetState): number {
  return target.inFlight / target.capacity;
}

function errorRate(target: TargetState): number {
  return target.recent.length === 0 ? 0 : target.recentFailures / target.recent.length;
}

/** The first target whose score is within `slack` of the highest. */
function firstBest(targets: readonly TargetState[], score: (target: TargetState) => number, slack: number): TargetState {
  const scores = targets.map(score);
  const best = Math.max(...scores);
  return targets[scores.findIndex((value) => value >= best - slack)] as TargetState;
}
