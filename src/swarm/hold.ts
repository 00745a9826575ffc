import { CONTROL_PLANE_ID } from '../agent/index.js';
import { type Bus, HeartbeatMessage, type SwarmTopics, swarmTopics } from '../bus/index.js';
import type { Clock, TimerHandle } from '../core/index.js';

/** How often a hold beats: the default `swarm.heartbeatMs`, far inside the default `controlPlaneTimeoutMs` (10 s). */
export const HOLD_BEAT_MS = 250;

/** Publishes the control plane's heartbeat on a swarm's topic; its agents exit when it stops for `controlPlaneTimeoutMs`. */
export function publishControlBeat(bus: Bus, topics: SwarmTopics, seq: number): void {
  void bus.publish(topics.heartbeat(CONTROL_PLANE_ID), HeartbeatMessage.draft({ seq, status: 'running' }), { qos: 0 }).catch(() => undefined);
}

/**
 * Keeps the agents of deployments a starting server is about to resume from giving up on their control
 * plane. A server resumes its deployments one after the other, each spec parsed and its data loaded
 * first; on a loaded machine the last ones began to beat after their agents' `controlPlaneTimeoutMs`
 * had run out (measured: 20 deployments, serve listening 10.9 s after its start), so agents that had
 * outlived the old server on an external cloud exited and were deployed again instead of adopted. A
 * hold beats for every swarm it is given, at once and every {@link HOLD_BEAT_MS}, until released.
 */
export class ControlBeatHold {
  readonly #bus: Bus;
  readonly #clock: Clock;
  readonly #held = new Map<string, SwarmTopics>();
  #seq = 0;
  #timer: TimerHandle | undefined;

  constructor(options: { readonly bus: Bus; readonly clock: Clock; readonly swarmIds: readonly string[] }) {
    this.#bus = options.bus;
    this.#clock = options.clock;
    for (const id of options.swarmIds) this.#held.set(id, swarmTopics(id));
    this.#beat();
  }

  /** The swarms still held. */
  get held(): readonly string[] {
    return [...this.#held.keys()];
  }

  /** Stops beating for one swarm (its deployment beats itself now, or will not run). */
  release(swarmId: string): void {
    this.#held.delete(swarmId);
    if (this.#held.size === 0) this.close();
  }

  /** Stops beating for every swarm. */
  close(): void {
    this.#held.clear();
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #beat(): void {
    if (this.#held.size === 0) return;
    const seq = this.#seq++;
    for (const topics of this.#held.values()) publishControlBeat(this.#bus, topics, seq);
    this.#timer = this.#clock.setTimeout(() => this.#beat(), HOLD_BEAT_MS);
  }
}
