import type { IntentPayload } from '../agent/index.js';
import type { Fill } from '../venue/index.js';
import { type LatencySummary, summarize } from '../core/index.js';

/** The most recent latencies of each kind whose percentiles a report gives (see {@link LatencySamples}). */
const LATENCY_WINDOW = 10_000;

/** Accepted orders whose fill it waits for, at most (the oldest is dropped past it: cancelled orders never fill). */
const OPEN_ORDERS_MAX = 10_000;

/**
 * Latencies of one kind: percentiles over the most recent {@link LATENCY_WINDOW} samples, count,
 * min, max and mean over all, so a deployment that runs for ever keeps a fixed number. Runs of up to
 * that many steps get exact percentiles over every sample, as before.
 */
class LatencySamples {
  readonly #recent: number[] = [];
  #next = 0;
  #count = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = Number.NEGATIVE_INFINITY;
  #sum = 0;

  push(value: number): void {
    if (this.#recent.length < LATENCY_WINDOW) this.#recent.push(value);
    else this.#recent[this.#next] = value;
    this.#next = (this.#next + 1) % LATENCY_WINDOW;
    this.#count += 1;
    this.#min = Math.min(this.#min, value);
    this.#max = Math.max(this.#max, value);
    this.#sum += value;
  }

  summary(): LatencySummary | null {
    const recent = summarize(this.#recent);
    return recent === null ? null : { ...recent, count: this.#count, min: this.#min, max: this.#max, mean: this.#sum / this.#count };
  }
}

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

/** A {@link StepLedger}'s counts, as its report gives them. */
export interface LedgerCounts {
  readonly decided: number;
  readonly duplicates: number;
  readonly compared: number;
  readonly agreed: number;
}

/**
 * What the control plane learns of each step as messages arrive: when it was published, the
 * signals (kept to replay them to a restarted agent), the deciders' digests, which steps reached
 * the venue, and the latencies between those moments, all on one clock (`now`).
 *
 * What it keeps per step lasts until {@link forget} drops the steps before a floor (the deployment
 * moves it up as agents checkpoint), so a deployment that runs for ever holds only the steps after
 * it, and those of orders the venue has not filled yet; its counts (steps decided, agreement) are
 * counters, and messages of a forgotten step are ignored.
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
  readonly #samples = {
    barToSignal: new LatencySamples(),
    signalToDecision: new LatencySamples(),
    barToOrder: new LatencySamples(),
    orderToFill: new LatencySamples(),
    barToFill: new LatencySamples(),
    stepRound: new LatencySamples(),
    allDecided: new LatencySamples(),
  };
  #compared = 0;
  #agreed = 0;
  #duplicates = 0;
  /** Steps at least one decider decided (see {@link decidedSteps}). */
  #decided = 0;
  /** Steps before it are forgotten (see {@link forget}). */
  #floor = 0;

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
    if (index < this.#floor) return;
    this.#published.set(index, this.#now());
  }

  /** A signal of step `index` from `from`. */
  signal(from: string, index: number, intents: IntentPayload[]): void {
    if (index < this.#floor) return;
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
    if (index < this.#floor) return;
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
   * @returns false when `from` had already decided it (sent again for a repeated step), or the step is forgotten.
   */
  decision(from: string, index: number, digest: string): boolean {
    if (index < this.#floor) return false;
    let byAgent = this.#digests.get(index);
    if (byAgent === undefined) {
      this.#digests.set(index, (byAgent = new Map<string, string>()));
      if (!this.#ordered.has(index)) this.#decided += 1;
    }
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
   * @returns true the first time for the step (its pipeline refusals are recorded then); false for a forgotten step.
   */
  ordersArrived(index: number): boolean {
    if (index < this.#floor || this.#ordered.has(index)) return false;
    this.#ordered.add(index);
    if (!this.#digests.has(index)) this.#decided += 1;
    const at = this.#published.get(index);
    if (at !== undefined) this.#samples.barToOrder.push(this.#now() - at);
    return true;
  }

  /** The venue took order `clientOrderId` of step `index`. */
  accepted(clientOrderId: string, index: number): void {
    this.#open.set(clientOrderId, { at: this.#now(), step: index });
    if (this.#open.size > OPEN_ORDERS_MAX) this.#open.delete(this.#open.keys().next().value as string);
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
    return this.#decided;
  }

  /**
   * Drops what it holds of the steps before `floor` (their signals can no longer be replayed from
   * here); a step with an order not filled yet keeps the time it was published, for its bar → fill
   * latency. The floor only moves up.
   */
  forget(floor: number): void {
    if (floor <= this.#floor) return;
    const waiting = new Set([...this.#open.values()].map((order) => order.step));
    for (const index of this.#published.keys()) if (index < floor && !waiting.has(index)) this.#published.delete(index);
    for (const byStep of [this.#signals, this.#lastSignalAt, this.#outputs, this.#digests]) for (const index of byStep.keys()) if (index < floor) byStep.delete(index);
    for (const index of this.#ordered) if (index < floor) this.#ordered.delete(index);
    this.#floor = floor;
  }

  /** The steps it holds something of (signals, outputs, digests, publication times). */
  get heldSteps(): number {
    return new Set([...this.#published.keys(), ...this.#signals.keys(), ...this.#outputs.keys(), ...this.#digests.keys(), ...this.#ordered]).size;
  }

  get duplicateOrders(): number {
    return this.#duplicates;
  }

  /** Its counts (steps decided, duplicate orders, decisions compared and agreed): what a venue snapshot keeps of it. */
  counts(): LedgerCounts {
    return { decided: this.#decided, duplicates: this.#duplicates, compared: this.#compared, agreed: this.#agreed };
  }

  /** Takes up counts {@link counts} gave, in place of its own. */
  restoreCounts(counts: LedgerCounts): void {
    this.#decided = counts.decided;
    this.#duplicates = counts.duplicates;
    this.#compared = counts.compared;
    this.#agreed = counts.agreed;
  }

  agreement(): SwarmAgreement {
    return { compared: this.#compared, agreed: this.#agreed, rate: this.#compared === 0 ? null : this.#agreed / this.#compared };
  }

  latency(): SwarmLatency {
    const samples = this.#samples;
    return {
      barToSignal: samples.barToSignal.summary(),
      signalToDecision: samples.signalToDecision.summary(),
      barToOrder: samples.barToOrder.summary(),
      orderToFill: samples.orderToFill.summary(),
      barToFill: samples.barToFill.summary(),
      stepRound: samples.stepRound.summary(),
      allDecided: samples.allDecided.summary(),
    };
  }
}
