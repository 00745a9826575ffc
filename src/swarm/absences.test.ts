import { describe, expect, it } from 'vitest';
import { planTopology } from '../topology/index.js';
import { AbsenceTracker, absencesOf } from './absences.js';

const strategy = (name: string) => ({ name, symbols: ['AAA'], capability: 'momentum' });
const mesh = planTopology({ topology: 'mesh', strategies: [strategy('a'), strategy('b'), strategy('c')] });
const [a, b, c] = mesh.agents.map((agent) => agent.id) as [string, string, string];

describe('absencesOf', () => {
  it('finds nothing when every agent took part in every step', () => {
    expect(absencesOf(mesh, [[a, b, c], [a, b, c]], 'how')).toEqual([]);
  });

  it.each([
    ['to the end', [[a, b, c], [a, c], [a, c]], [{ agent: b, fromStep: 1, toStep: 2, steps: 2 }]],
    ['in the middle', [[a, b, c], [a, c], [a, b, c]], [{ agent: b, fromStep: 1, toStep: 1, steps: 1 }]],
    ['twice', [[a, c], [a, b, c], [a, c]], [{ agent: b, fromStep: 0, toStep: 0, steps: 1 }, { agent: b, fromStep: 2, toStep: 2, steps: 1 }]],
    ['two agents, ordered by first step', [[a, b, c], [a, b], [b]], [{ agent: c, fromStep: 1, toStep: 2, steps: 2 }, { agent: a, fromStep: 2, toStep: 2, steps: 1 }]],
  ])('tells each stretch of steps an agent missed: %s', (_, participants, expected) => {
    const found = absencesOf(mesh, participants, 'decided without it');
    expect(found.map(({ agent, fromStep, toStep, steps }) => ({ agent, fromStep, toStep, steps }))).toEqual(expected);
    for (const absence of found) expect(absence).toMatchObject({ label: mesh.agents.find((agent) => agent.id === absence.agent)?.label, how: 'decided without it' });
  });

  it("says a coordinator's workers were silenced with it", () => {
    const hierarchy = planTopology({ topology: 'hierarchical', strategies: [strategy('a'), strategy('b')], coordinators: 1 });
    const everyone = hierarchy.agents.map((agent) => agent.id);
    const [absence] = absencesOf(hierarchy, [everyone, everyone.filter((id) => id !== 'coordinator-1')], 'decided without its signals');
    expect(absence).toMatchObject({ agent: 'coordinator-1', fromStep: 1, toStep: 1 });
    expect(absence?.how).toBe(`decided without its signals; so were those of its workers ${hierarchy.agents.filter((agent) => agent.kind === 'trader').map((agent) => agent.id).join(', ')}`);
  });

  it('ignores steps nobody published', () => {
    expect(absencesOf(mesh, [[a, b, c], undefined], 'how')).toEqual([]);
  });
  it('found step by step as steps close: a stretch still open ends at the last step given, and goes on with the next', () => {
    const tracker = new AbsenceTracker(mesh);
    tracker.step(0, [a, b, c]);
    tracker.step(1, [a, c]);
    expect(tracker.absences('how').map(({ agent, fromStep, toStep }) => ({ agent, fromStep, toStep }))).toEqual([{ agent: b, fromStep: 1, toStep: 1 }]);
    for (let index = 2; index < 100_000; index++) tracker.step(index, index < 50_000 ? [a, c] : [a, b, c]);
    expect(tracker.absences('how').map(({ agent, fromStep, toStep, steps }) => ({ agent, fromStep, toStep, steps }))).toEqual([{ agent: b, fromStep: 1, toStep: 49_999, steps: 49_999 }]);
  });

  it('saves what it holds as JSON, and a tracker that takes it up goes on as the one that saved it', () => {
    const steps: Array<readonly string[]> = [[a, b, c], [a, c], [a, b, c], [b], [b], [a, b, c], [a, b]];
    const whole = new AbsenceTracker(mesh);
    const first = new AbsenceTracker(mesh);
    steps.forEach((taking, index) => {
      whole.step(index, taking);
      if (index < 4) first.step(index, taking);
    });
    // Saved with c (and a) away, taken up by a tracker that saw none of the steps.
    const resumed = new AbsenceTracker(mesh);
    resumed.restore(JSON.parse(JSON.stringify(first.save())) as ReturnType<AbsenceTracker['save']>);
    steps.slice(4).forEach((taking, i) => resumed.step(4 + i, taking));
    expect(resumed.absences('how')).toEqual(whole.absences('how'));
    expect(whole.absences('how')).toHaveLength(4);
  });

  it('refuses saved absences of an agent it does not have, and keeps its own', () => {
    const tracker = new AbsenceTracker(mesh);
    tracker.step(0, [a, c]);
    expect(() => tracker.restore({ open: [['nobody', 0]], closed: [], last: 0 })).toThrow(/agent "nobody", which this deployment does not have/);
    expect(tracker.absences('how').map((absence) => absence.agent)).toEqual([b]);
  });
});
