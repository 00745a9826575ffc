import { describe, expect, it } from 'vitest';
import { validateSegment } from '../bus/index.js';
import { InvalidInputError } from '../core/index.js';
import { type AgentPlan, type PlannedStrategy, type TopologyPlan, planTopology } from './index.js';

/** `n` strategies named s1, s2, … on symbols A1, A2, … with capability `momentum`. */
function strategies(n: number): PlannedStrategy[] {
  return Array.from({ length: n }, (_, i) => ({ name: `s${i + 1}`, symbols: [`A${i + 1}`], capability: 'momentum' }));
}

function agent(plan: TopologyPlan, id: string): AgentPlan {
  const found = plan.agents.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no agent ${id} in ${plan.agents.map((a) => a.id).join(', ')}`);
  return found;
}

/** `id kind decides/submits/readsSteps` of each agent, for one-line comparisons. */
function roles(plan: TopologyPlan): string[] {
  return plan.agents.map((a) => `${a.id} ${a.kind}${a.decides ? ' decides' : ''}${a.submits ? ' submits' : ''}${a.readsSteps ? '' : ' no-steps'}`);
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected it to throw');
}

describe.each([3, 4, 5])('planTopology with %i strategies', (n) => {
  const all = strategies(n);
  const traderIds = all.map((s, i) => `${i + 1}-${s.name}`);

  it('mesh: one deciding, submitting trader per strategy, each listening to all the others', () => {
    const plan = planTopology({ topology: 'mesh', strategies: all });
    expect(plan.topology).toBe('mesh');
    expect(roles(plan)).toEqual(traderIds.map((id) => `${id} trader decides submits`));
    plan.agents.forEach((a, i) => {
      expect(a).toMatchObject({ label: `s${i + 1}`, strategies: [i], decisionsFrom: [], requires: [], ring: [], workers: [] });
      expect(a.upstream).toEqual(traderIds.filter((id) => id !== a.id));
      expect(a.capabilities).toEqual(['indicators', 'momentum', `symbol:A${i + 1}`]);
    });
    expect(plan.deciders).toEqual(traderIds);
    expect(plan.critical).toBeUndefined();
    expect(plan.entry).toBeUndefined();
    // Any one trader can be missing: the others decide.
    expect(plan.essential).toEqual({});
  });

  it('star: a hub that decides and submits over the spokes, spokes that require the hub', () => {
    const plan = planTopology({ topology: 'star', strategies: all });
    expect(roles(plan)).toEqual(['hub decider decides submits', ...traderIds.map((id) => `${id} trader`)]);
    const hub = agent(plan, 'hub');
    expect(hub).toMatchObject({ label: 'hub', strategies: [], upstream: traderIds, requires: [], decisionsFrom: [] });
    traderIds.forEach((id, i) => {
      expect(agent(plan, id)).toMatchObject({ strategies: [i], upstream: [], requires: ['hub'], decisionsFrom: [], readsSteps: true });
    });
    expect(plan.deciders).toEqual(['hub']);
    expect(plan.critical).toBe('hub');
    expect(plan.entry).toBeUndefined();
    expect(plan.essential).toEqual({ hub: 'the spokes cannot trade without their hub' });
  });

  it('hierarchical: workers dealt to ceil(n/3) coordinators in turn, coordinators under a root that decides', () => {
    const plan = planTopology({ topology: 'hierarchical', strategies: all });
    const count = Math.ceil(n / 3);
    const coordinatorIds = Array.from({ length: count }, (_, k) => `coordinator-${k + 1}`);
    expect(roles(plan)).toEqual([
      'root decider decides submits',
      ...coordinatorIds.map((id) => `${id} coordinator`),
      ...traderIds.map((id) => `${id} trader`),
    ]);
    expect(agent(plan, 'root')).toMatchObject({ upstream: coordinatorIds, decisionsFrom: [], strategies: [] });
    coordinatorIds.forEach((id, k) => {
      const mine = traderIds.filter((_, i) => i % count === k);
      const coordinator = agent(plan, id);
      expect(coordinator).toMatchObject({ upstream: mine, decisionsFrom: ['root'], strategies: [], decides: false, submits: false });
      expect(coordinator.workers).toEqual(mine.map((worker) => ({ id: worker, capabilities: agent(plan, worker).capabilities })));
    });
    traderIds.forEach((id, i) => {
      expect(agent(plan, id)).toMatchObject({ strategies: [i], upstream: [], decisionsFrom: [coordinatorIds[i % count]], requires: [] });
    });
    expect(plan.deciders).toEqual(['root']);
    expect(plan.critical).toBeUndefined();
    expect(plan.entry).toBeUndefined();
    // A coordinator or a worker can be missing (the root decides without its signals); the root cannot.
    expect(plan.essential).toEqual({ root: "the root is the hierarchy's only decider" });
  });

  it('hierarchical: with `coordinators` set, deals round-robin among that many', () => {
    const plan = planTopology({ topology: 'hierarchical', strategies: all, coordinators: 2 });
    expect(agent(plan, 'coordinator-1').upstream).toEqual(traderIds.filter((_, i) => i % 2 === 0));
    expect(agent(plan, 'coordinator-2').upstream).toEqual(traderIds.filter((_, i) => i % 2 === 1));
    expect(agent(plan, 'root').upstream).toEqual(['coordinator-1', 'coordinator-2']);
    const one = planTopology({ topology: 'hierarchical', strategies: all, coordinators: 1 });
    expect(agent(one, 'coordinator-1').upstream).toEqual(traderIds);
    const each = planTopology({ topology: 'hierarchical', strategies: all, coordinators: n });
    expect(each.agents.filter((a) => a.kind === 'coordinator').map((a) => a.upstream)).toEqual(traderIds.map((id) => [id]));
  });

  it('ring: collector → analyser (every strategy) → risk assessor (decides) → executor (submits) → collector', () => {
    const plan = planTopology({ topology: 'ring', strategies: all });
    expect(roles(plan)).toEqual([
      'collector collector',
      'analyser trader no-steps',
      'risk-assessor decider decides no-steps',
      'executor executor submits no-steps',
    ]);
    expect(agent(plan, 'collector')).toMatchObject({ upstream: [], decisionsFrom: ['executor'], ring: ['analyser', 'risk-assessor', 'executor'], strategies: [] });
    expect(agent(plan, 'analyser')).toMatchObject({ upstream: ['collector'], strategies: all.map((_, i) => i), ring: [] });
    expect(agent(plan, 'risk-assessor')).toMatchObject({ upstream: ['analyser'], submits: false, strategies: [] });
    expect(agent(plan, 'executor')).toMatchObject({ upstream: ['risk-assessor'], decides: false });
    expect(plan.deciders).toEqual(['executor']);
    expect(plan.critical).toBeUndefined();
    expect(plan.entry).toBe('collector');
    expect(Object.keys(plan.essential)).toEqual(['collector', 'analyser', 'risk-assessor', 'executor']);
    expect(new Set(Object.values(plan.essential))).toEqual(new Set(['the ring cannot decide without it']));
  });
});

describe('planTopology agent ids', () => {
  const awkward: PlannedStrategy[] = [
    { name: 'sma/AAA', symbols: ['AAA'], capability: 'sma-crossover' },
    { name: 'a+b', symbols: ['B'], capability: 'x' },
    { name: 'all#', symbols: ['C'], capability: 'x' },
    { name: 'with spaces and ü', symbols: ['D'], capability: 'x' },
    { name: '$sys', symbols: ['E'], capability: 'x' },
    { name: 'x'.repeat(300), symbols: ['F'], capability: 'x' },
  ];

  it.each(['mesh', 'star', 'hierarchical', 'ring'] as const)('%s: every id is a valid MQTT topic segment, and ids are unique', (topology) => {
    const plan = planTopology({ topology, strategies: awkward });
    const ids = plan.agents.map((a) => a.id);
    for (const id of ids) expect(validateSegment('agentId', id)).toBe(id);
    expect(new Set(ids).size).toBe(ids.length);
    // Everything an agent refers to is an agent of the plan.
    for (const a of plan.agents) {
      for (const peer of [...a.upstream, ...a.decisionsFrom, ...a.requires, ...a.ring, ...a.workers.map((w) => w.id)]) expect(ids).toContain(peer);
    }
    for (const id of plan.deciders) expect(ids).toContain(id);
  });

  it('replaces characters outside letters, digits, . _ - and keeps the label', () => {
    const plan = planTopology({ topology: 'mesh', strategies: awkward });
    expect(plan.agents.slice(0, 5).map((a) => a.id)).toEqual(['1-sma-AAA', '2-a-b', '3-all-', '4-with-spaces-and--', '5--sys']);
    expect(plan.agents[5]?.id).toBe(`6-${'x'.repeat(100)}`);
    expect(plan.agents.map((a) => a.label)).toEqual(awkward.map((s) => s.name));
  });

  it('keeps two strategies with the same name apart by their position', () => {
    const plan = planTopology({ topology: 'mesh', strategies: [awkward[1] as PlannedStrategy, awkward[1] as PlannedStrategy] });
    expect(plan.agents.map((a) => a.id)).toEqual(['1-a-b', '2-a-b']);
  });
});

describe('planTopology errors', () => {
  it.each([
    [{ topology: 'bus', strategies: strategies(3) }, 'topology', 'topology: must be one of mesh, star, hierarchical, ring, got "bus"'],
    [{ topology: 'mesh', strategies: [] }, 'strategies', 'strategies: must list at least one strategy'],
    [{ topology: 'hierarchical', strategies: strategies(3), coordinators: 0 }, 'coordinators', 'coordinators: must be an integer from 1 to the number of strategies (3), got 0'],
    [{ topology: 'hierarchical', strategies: strategies(3), coordinators: 4 }, 'coordinators', 'coordinators: must be an integer from 1 to the number of strategies (3), got 4'],
    [{ topology: 'hierarchical', strategies: strategies(3), coordinators: 1.5 }, 'coordinators', 'coordinators: must be an integer from 1 to the number of strategies (3), got 1.5'],
    [{ topology: 'hierarchical', strategies: strategies(3), coordinators: Number.NaN }, 'coordinators', 'coordinators: must be an integer from 1 to the number of strategies (3), got NaN'],
  ])('refuses %j naming %s', (options, field, message) => {
    const error = thrown(() => planTopology(options as never));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field, message });
  });
});
