import type { TopologyPlan } from '../topology/index.js';
import { SwarmRunError } from './fleet.js';

/** Steps decided without one agent: which, and how the decisions were taken without it. */
export interface AgentAbsence {
  readonly agent: string;
  readonly label: string;
  /** The first and last step (inclusive) decided without it, and how many. */
  readonly fromStep: number;
  readonly toStep: number;
  readonly steps: number;
  readonly how: string;
}

/** An {@link AbsenceTracker}'s state: each absent agent's open stretch, the closed ones, the last step seen. */
export interface AbsenceState {
  readonly open: ReadonlyArray<readonly [string, number]>;
  readonly closed: ReadonlyArray<{ readonly agent: string; readonly fromStep: number; readonly toStep: number }>;
  readonly last: number;
}

/**
 * The stretches of steps each agent did not take part in, found step by step as steps close: it
 * keeps one open stretch per agent and the closed ones, not the steps, so a deployment that runs for
 * ever holds as many as there were absences.
 */
export class AbsenceTracker {
  readonly #plan: TopologyPlan;
  /** Each absent agent's first step of the stretch it is in now. */
  readonly #open = new Map<string, number>();
  readonly #closed: Array<{ readonly agent: string; readonly fromStep: number; readonly toStep: number }> = [];
  #last = -1;

  constructor(plan: TopologyPlan) {
    this.#plan = plan;
  }

  /** Step `index` was decided with `taking` (undefined: nobody published it; every stretch ends before it). */
  step(index: number, taking: readonly string[] | undefined): void {
    for (const agent of this.#plan.agents) {
      const absent = taking !== undefined && !taking.includes(agent.id);
      const from = this.#open.get(agent.id);
      if (absent && from === undefined) this.#open.set(agent.id, index);
      else if (!absent && from !== undefined) {
        this.#closed.push({ agent: agent.id, fromStep: from, toStep: index - 1 });
        this.#open.delete(agent.id);
      }
    }
    this.#last = index;
  }

  /** What it holds, as plain JSON: what {@link restore} takes up (a venue snapshot keeps it, see `VenueSnapshot`). */
  save(): AbsenceState {
    return { open: [...this.#open], closed: this.#closed.map((stretch) => ({ ...stretch })), last: this.#last };
  }

  /**
   * Takes up what {@link save} gave, in place of what it held.
   * @throws SwarmRunError when the state names an agent the plan does not have.
   */
  restore(state: AbsenceState): void {
    const known = new Set(this.#plan.agents.map((agent) => agent.id));
    for (const agent of [...state.open.map(([id]) => id), ...state.closed.map((stretch) => stretch.agent)]) {
      if (!known.has(agent)) throw new SwarmRunError(`the saved absences name agent ${JSON.stringify(agent)}, which this deployment does not have; it was saved by another spec`);
    }
    this.#open.clear();
    for (const [agent, from] of state.open) this.#open.set(agent, from);
    this.#closed.splice(0, this.#closed.length, ...state.closed.map((stretch) => ({ ...stretch })));
    this.#last = state.last;
  }

  /**
   * The absences so far (a stretch still open ends at the last step given), with how the steps were
   * decided without each agent, in step order; with `last`, only the latest that many.
   */
  absences(how: string, last = Number.POSITIVE_INFINITY): AgentAbsence[] {
    const stretches = [...this.#closed, ...[...this.#open].map(([agent, fromStep]) => ({ agent, fromStep, toStep: this.#last }))].sort((a, b) => a.fromStep - b.fromStep || a.agent.localeCompare(b.agent));
    return stretches.slice(Math.max(0, stretches.length - last)).map(({ agent: id, fromStep, toStep }): AgentAbsence => {
      const agent = this.#plan.agents.find((candidate) => candidate.id === id) as TopologyPlan['agents'][number];
      const extra = agent.kind === 'coordinator' ? `; so were those of its workers ${agent.upstream.join(', ')}` : '';
      return { agent: id, label: agent.label, fromStep, toStep, steps: toStep - fromStep + 1, how: `${how}${extra}` };
    });
  }

  /** How many stretches there are so far, open ones included. */
  count(): number {
    return this.#closed.length + this.#open.size;
  }
}

/**
 * The stretches of steps each agent did not take part in (from who took part in each decided step),
 * with how they were decided without it. A coordinator's absence silences its workers too.
 */
export function absencesOf(plan: TopologyPlan, participantsOf: ReadonlyArray<readonly string[] | undefined>, how: string): AgentAbsence[] {
  const tracker = new AbsenceTracker(plan);
  participantsOf.forEach((taking, index) => tracker.step(index, taking));
  return tracker.absences(how);
}
