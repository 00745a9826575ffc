import type { TopologyPlan } from '../topology/index.js';

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

/**
 * The stretches of steps each agent did not take part in (from who took part in each decided step),
 * with how they were decided without it. A coordinator's absence silences its workers too.
 */
export function absencesOf(plan: TopologyPlan, participantsOf: ReadonlyArray<readonly string[] | undefined>, how: string): AgentAbsence[] {
  const absences: AgentAbsence[] = [];
  for (const agent of plan.agents) {
    const extra = agent.kind === 'coordinator' ? `; so were those of its workers ${agent.upstream.join(', ')}` : '';
    let from: number | undefined;
    const close = (to: number): void => {
      if (from === undefined) return;
      absences.push({ agent: agent.id, label: agent.label, fromStep: from, toStep: to, steps: to - from + 1, how: `${how}${extra}` });
      from = undefined;
    };
    participantsOf.forEach((taking, index) => {
      const absent = taking !== undefined && !taking.includes(agent.id);
      if (absent && from === undefined) from = index;
      else if (!absent) close(index - 1);
    });
    close(participantsOf.length - 1);
  }
  return absences.sort((a, b) => a.fromStep - b.fromStep || a.agent.localeCompare(b.agent));
}
