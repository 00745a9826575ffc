import { InvalidInputError } from '../core/index.js';

/** States of a ring's circuit breaker. */
export type RingBreakerState = 'closed' | 'open' | 'half-open';

/** Events that move a {@link RingBreaker}. */
export type RingBreakerEvent = 'stage-lost' | 'stages-back' | 'trial-admitted' | 'lap-completed';

/**
 * The ring breaker's transitions (DESIGN conventions: a state machine is a table, and a pair it
 * does not list is a bug). `closed` lets every step in; a silent stage opens it; when every stage
 * is heard again it goes half-open and lets one trial step around the ring; the trial's completed
 * lap closes it.
 */
export const RING_BREAKER_TRANSITIONS: Readonly<Record<RingBreakerState, Partial<Record<RingBreakerEvent, RingBreakerState>>>> = Object.freeze({
  closed: { 'stage-lost': 'open', 'lap-completed': 'closed' },
  open: { 'stage-lost': 'open', 'stages-back': 'half-open', 'lap-completed': 'open' },
  'half-open': { 'stage-lost': 'open', 'trial-admitted': 'half-open', 'lap-completed': 'closed' },
});

/**
 * The next state.
 * @throws InvalidInputError naming `event` for a pair the table does not list.
 */
export function ringBreakerTransition(state: RingBreakerState, event: RingBreakerEvent): RingBreakerState {
  const next = RING_BREAKER_TRANSITIONS[state][event];
  if (next === undefined) throw new InvalidInputError('event', `${event} is not allowed in state ${state}`);
  return next;
}

/** The circuit breaker at a ring's entry: new work is refused while a stage is lost. */
export class RingBreaker {
  #state: RingBreakerState = 'closed';
  #silent: readonly string[] = [];
  #trialInFlight = false;
  /** How many times it opened. */
  opened = 0;

  get state(): RingBreakerState {
    return this.#state;
  }

  /** Feeds the latest liveness check: whether every stage was heard recently, and which were not. */
  observe(allAlive: boolean, silent: readonly string[]): void {
    if (!allAlive) {
      if (this.#state !== 'open') this.opened += 1;
      this.#silent = silent;
      this.#trialInFlight = false;
      this.#state = ringBreakerTransition(this.#state, 'stage-lost');
    } else if (this.#state === 'open') {
      this.#state = ringBreakerTransition(this.#state, 'stages-back');
    }
  }

  /** Whether a new step may enter: `undefined` when it may, else why not. */
  admit(): string | undefined {
    if (this.#state === 'closed') return undefined;
    if (this.#state === 'open') return `ring breaker open: stage ${this.#silent.join(', ')} silent`;
    if (this.#trialInFlight) return 'ring breaker half-open: a trial step is going around the ring';
    this.#trialInFlight = true;
    this.#state = ringBreakerTransition(this.#state, 'trial-admitted');
    return undefined;
  }

  /** A step came back from the ring's last stage. */
  lapCompleted(): void {
    this.#trialInFlight = false;
    this.#state = ringBreakerTransition(this.#state, 'lap-completed');
  }
}
