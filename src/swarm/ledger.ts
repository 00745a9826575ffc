import type { IntentPayload } from '../agent/index.js';
import type { Fill } from '../venue/index.js';
import { type LatencySummary, summarize } from '../core/index.js';

/** The latency percentiles of a run, in ms (see {@link StepLedger}). */
export interface SwarmLatency {
  readonly barToSignal: LatencySummary | null;
  readonly signalToDecision: LatencySummary | null;
  readonly barToOrder: LatencySummary | null;
  readonly orderToFill: LatencySummary | null;
  /** From the step that decided an order being published to the order's fill. */
  readonly barToFill: LatencySummary | null;
  /** Lockstep: from a step being published to its orders at the venue (or its first decision when it has none). */
  readonly stepRound: LatencySummary | null;
  /** From a step being published to the last of all deciders' decisions (a consensus round in a mesh); steps every decider decided. */
  readonly allDecided: LatencySummary | null;
}

/** Decisions of the same step by several agents (a mesh) that agreed, and the rate. */
export interface SwarmAgreement {
  readonly compared: number;
  readonly agreed: number;
  readonly rate: number | null;
}

/**
 * What the control plane learns of each step as messages arrive: when it was published, the
 * signals (kept to replay them to a restarted agent), the deciders' digests, which steps reached
 * the venue, and the latencies between those moments, all on one clock (`now`).
 */
export class StepLedger {
  readonly #now: () => number;
  /** The ring's entry only forwards steps: its messages are not signals. */
  readonly #entry: string | undefined;
  readonly #deciders: number;
  readonly #published = new Map<number, number>();
  readonly #signals = new Map<number, Map<string, IntentPayload[]>>();
  readonly #lastSignalAt = new Map<number, number>();
  /** Who sent a signal or a decision of each step (to tell whom a stalled step waits for). */
  readonly #outputs = new Map<number, Set<string>>();
  readonly #digests = new Map<number, Map<string, string>>();
  /** Steps whose orders reached the venue (later deciders of a mesh repeat them). */
  readonly #ordered = new Set<number>();
  /** Accepted orders not filled yet: when the venue took them, and the step they were decided on. */
  readonly #open = new Map<string, { readonly at: number; readonly step: number }>();
  readonly #samples = { barToSignal: [] as number[], signalToDecision: [] as number[], barToOrder: [] as number[], orderToFill: [] as number[], barToFill: [] as number[], stepRound: [] as number[], allDecided: [] as number[] };
  #compared = 0;
  #agreed = 0;
  #duplicates = 0;

  /**
   * @param options.deciders how many agents decide each step
   * @param options.entry the ring's entry (its forwarded steps are not signals)
   * @param options.now the clock, in ms (default `performance.now`)
   */
  constructor(options: { readonly deciders: number; readonly entry?: string; readonly now?: () => number }) {
    this.#deciders = options.deciders;
    this.#entry = options.entry;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Step `index` was published (again: its latencies count from the latest time). */
  published(index: number): void {
    this.#published.set(index, this.#now());
  }

  /** A signal of step `index` from `from`. */
  signal(from: string, index: number, intents: IntentPayload[]): void {
    const now = this.#now();
    const at = this.#published.get(index);
    if (at !== undefined && from !== this.#entry) this.#samples.barToSignal.push(now - at);
    this.#lastSignalAt.set(index, now);
    this.output(from, index);
    let byAgent = this.#signals.get(index);
    if (byAgent === undefined) this.#signals.set(index, (byAgent = new Map<string, IntentPayload[]>()));
    byAgent.set(from, intents);
  }

  /** `from` sent a signal or a decision of step `index`. */
  output(from: string, index: number): void {
    let senders = this.#outputs.get(index);
    if (senders === undefined) this.#outputs.set(index, (senders = new Set<string>()));
    senders.add(from);
  }

  /** The agents that sent a signal or a decision of step `index`. */
  outputsOf(index: number): ReadonlySet<string> {
    return this.#outputs.get(index) ?? new Set<string>();
  }

  /**
   * A decider's decision of step `index`: compared with the step's first one.
   * @returns false when `from` had already decided it (sent again for a repeated step).
   */
  decision(from: string, index: number, digest: string): boolean {
    let byAgent = this.#digests.get(index);
    if (byAgent === undefined) this.#digests.set(index, (byAgent = new Map<string, string>()));
    if (byAgent.has(from)) return false;
    const first = byAgent.values().next();
    if (first.done === true) {
      const last = this.#lastSignalAt.get(index);
      if (last !== undefined) this.#samples.signalToDecision.push(this.#now() - last);
    } else {
      this.#compared += 1;
      if (first.value === digest) this.#agreed += 1;
    }
    byAgent.set(from, digest);
    const at = this.#published.get(index);
    if (byAgent.size === this.#deciders && at !== undefined) this.#samples.allDecided.push(this.#now() - at);
    return true;
  }

  /**
   * Orders of step `index` reached the venue.
   * @returns true the first time for the step (its pipeline refusals are recorded then).
   */
  ordersArrived(index: number): boolean {
    if (this.#ordered.has(index)) return false;
    this.#ordered.add(index);
    const at = this.#published.get(index);
    if (at !== undefined) this.#samples.barToOrder.push(this.#now() - at);
    return true;
  }

  /** The venue took order `clientOrderId` of step `index`. */
  accepted(clientOrderId: string, index: number): void {
    this.#open.set(clientOrderId, { at: this.#now(), step: index });
  }

  /** The venue answered an order `duplicate` (another decider of a mesh sent it first). */
  duplicate(): void {
    this.#duplicates += 1;
  }

  /** Fills the venue made: order → fill and bar → fill for the orders the venue took in this run. */
  filled(fills: readonly Fill[]): void {
    if (fills.length === 0) return;
    const now = this.#now();
    for (const fill of fills) {
      const order = this.#open.get(fill.clientOrderId);
      if (order === undefined) continue;
      this.#samples.orderToFill.push(now - order.at);
      const published = this.#published.get(order.step);
      if (published !== undefined) this.#samples.barToFill.push(now - published);
      this.#open.delete(fill.clientOrderId);
    }
  }

  /**
   * Whether step `index` is done: its first orders request carries all of its orders (in a mesh the
   * other deciders send the same orders, which the venue answers `duplicate`, and their digests are
   * still compared as their decisions arrive). A step with nothing to submit sends no orders; it is
   * done at the first decision of a decider that `isLive`.
   */
  done(index: number, deciders: readonly string[], isLive: (agent: string) => boolean): boolean {
    if (this.#ordered.has(index)) return true;
    const byAgent = this.#digests.get(index);
    return byAgent !== undefined && deciders.some((id) => byAgent.has(id) && isLive(id));
  }

  /** Step `index` is done (lockstep): records its round time. */
  roundCompleted(index: number): void {
    const at = this.#published.get(index);
    if (at !== undefined) this.#samples.stepRound.push(this.#now() - at);
  }

  /** The intents `agents` signalled for step `index` (replayed to a restarted agent). */
  signalsOf(index: number, agents: ReadonlySet<string>): IntentPayload[] {
    const byAgent = this.#signals.get(index);
    if (byAgent === undefined) return [];
    return [...byAgent].filter(([agent]) => agents.has(agent)).flatMap(([, intents]) => intents);
  }

  /**
   * Steps at least one decider decided: it published its decision, or its orders reached the venue
   * (a decider can die between the two).
   */
  get decidedSteps(): number {
    let decided = this.#digests.size;
    for (const index of this.#ordered) if (!this.#digests.has(index)) decided += 1;
    return decided;
  }

  get duplicateOrders(): number {
    return this.#duplicates;
  }

  agreement(): SwarmAgreement {
    return { compared: this.#compared, agreed: this.#agreed, rate: this.#compared === 0 ? null : this.#agreed / this.#compared };
  }

  latency(): SwarmLatency {
    const samples = this.#samples;
    return {
      barToSignal: summarize(samples.barToSignal),
      signalToDecision: summarize(samples.signalToDecision),
      barToOrder: summarize(samples.barToOrder),
      orderToFill: summarize(samples.orderToFill),
      barToFill: summarize(samples.barToFill),
      stepRound: summarize(samples.stepRound),
      allDecided: summarize(samples.allDecided),
    };
  }
}
