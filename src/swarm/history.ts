import type { StepPayload } from '../agent/index.js';
import type { Bar } from '../market/index.js';
import { SwarmRunError } from './fleet.js';

/** One published step as a deployment keeps it: what went on the bus, and the bars the venue trades its orders at. */
export interface HeldStep {
  readonly payload: StepPayload;
  readonly bars: readonly Bar[];
}

/**
 * The steps a deployment published, from the oldest one it may still need (see
 * `Deployment.heldSteps`) to the last: older ones are let go with {@link forget}, so a deployment
 * that runs for ever holds a bounded number. Steps come in order (0, 1, 2… or, for a resumed
 * deployment, on from where it stood).
 */
export class StepHistory {
  /** The index of `#held[0]`. */
  #first = 0;
  readonly #held: HeldStep[] = [];

  /**
   * Step `payload.index` was published.
   * @throws SwarmRunError when it is not the step after the last one added.
   */
  add(payload: StepPayload, bars: readonly Bar[]): void {
    if (this.#held.length === 0 && payload.index >= this.#first) this.#first = payload.index;
    else if (payload.index !== this.count) throw new SwarmRunError(`step ${payload.index} was published after step ${this.count - 1}: steps must follow one another`);
    this.#held.push({ payload, bars });
  }

  /** Step `index`, or undefined when it was never published or was let go. */
  get(index: number): HeldStep | undefined {
    return index < this.#first ? undefined : this.#held[index - this.#first];
  }

  /**
   * Step `index`, which must be held (the step being traded, or one a caller checked).
   * @throws SwarmRunError when it is not.
   */
  held(index: number): HeldStep {
    const step = this.get(index);
    if (step === undefined) throw new SwarmRunError(`step ${index} is not held (steps ${this.#first} to ${this.count - 1} are)`);
    return step;
  }

  /** Lets go of the steps before `floor` (a floor below the first step held changes nothing). */
  forget(floor: number): void {
    const drop = Math.min(floor - this.#first, this.#held.length);
    if (drop <= 0) return;
    this.#held.splice(0, drop);
    this.#first += drop;
  }

  /** The index of the oldest step held (the next to be published when none is). */
  get first(): number {
    return this.#first;
  }

  /** How many steps it holds. */
  get size(): number {
    return this.#held.length;
  }

  /** How many steps were published: the index of the next one. */
  get count(): number {
    return this.#first + this.#held.length;
  }
}
