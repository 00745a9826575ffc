import { describe, expect, it } from 'vitest';
import { InvalidInputError, Rng } from '../core/index.js';
import { ROUTING_POLICIES, type RouteTarget, type Router, type RouterOptions, type RoutingPolicy, compileRouterOptions, createRouter } from './index.js';

function router(options: RouterOptions, targets: readonly RouteTarget[]): Router {
  const created = createRouter(options);
  for (const target of targets) created.add(target);
  return created;
}

/** Picks and dispatches one task per entry (a capability or undefined); `-` when no target could take it. */
function run(routed: Router, tasks: ReadonlyArray<string | undefined>): string {
  return tasks
    .map((capability) => {
      const id = routed.pick(capability === undefined ? {} : { capability });
      if (id !== undefined) routed.dispatched(id);
      return id ?? '-';
    })
    .join(' ');
}

const EIGHT = Array.from({ length: 8 }, () => undefined);

describe('choice sequences', () => {
  // b handles two tasks at once; nothing completes.
  const targets = [{ id: 'a' }, { id: 'b', capacity: 2 }, { id: 'c' }];

  it.each<[RoutingPolicy, string]>([
    ['round-robin', 'a b c a b c a b'],
    // Loads: ties rotate from the one after the last pick; b takes twice the tasks for twice the capacity.
    ['least-loaded', 'a b c b c a b b'],
    ['capability', 'a b c b c a b b'],
    // No outcomes yet, so the score only falls with load.
    ['adaptive', 'a b c b c a b b'],
  ])('%s: %s', (policy, expected) => {
    expect(run(router({ policy }, targets), EIGHT)).toBe(expected);
  });

  // a: x; b: y; c: x and y; d: nothing. Tasks: x, y, any, x, y, any, x, x, z.
  const skilled = [
    { id: 'a', capabilities: ['x'] },
    { id: 'b', capabilities: ['y'] },
    { id: 'c', capabilities: ['x', 'y'] },
    { id: 'd' },
  ];
  const tasks = ['x', 'y', undefined, 'x', 'y', undefined, 'x', 'x', 'z'];

  it.each<[RoutingPolicy, string]>([
    ['round-robin', 'a b c a b c a c -'],
    ['least-loaded', 'a b c a b d c a -'],
    ['capability', 'a b c a b d c a -'],
    ['adaptive', 'a b c a b d c a -'],
  ])('%s with capabilities: %s (nobody has z)', (policy, expected) => {
    expect(run(router({ policy }, skilled), tasks)).toBe(expected);
  });

  it.each(ROUTING_POLICIES)('%s: pick changes no counter, but repeated picks of equal targets rotate', (policy) => {
    const routed = router({ policy }, [{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const before = routed.snapshot();
    expect([routed.pick(), routed.pick(), routed.pick(), routed.pick()]).toEqual(['a', 'b', 'c', 'a']);
    expect(routed.snapshot()).toEqual(before);
  });

  it.each(ROUTING_POLICIES)('%s: skips a target that is not healthy, and picks it again once it is', (policy) => {
    const routed = router({ policy }, [{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    routed.setHealthy('b', false);
    expect([routed.pick(), routed.pick(), routed.pick()]).toEqual(['a', 'c', 'a']);
    expect(routed.snapshot().map((target) => [target.id, target.healthy])).toEqual([
      ['a', true],
      ['b', false],
      ['c', true],
    ]);
    routed.setHealthy('a', false);
    routed.setHealthy('c', false);
    expect(routed.pick()).toBeUndefined();
    routed.setHealthy('b', true);
    expect(routed.pick()).toBe('b');
    routed.setHealthy('nobody', false);
  });

  it.each(ROUTING_POLICIES)('%s: undefined when no target is eligible', (policy) => {
    const routed = createRouter({ policy });
    expect(routed.pick()).toBeUndefined();
    routed.add({ id: 'a', capabilities: ['gpu'] });
    expect(routed.pick({ capability: 'cpu' })).toBeUndefined();
    expect(routed.pick({ capability: 'gpu' })).toBe('a');
  });
});

describe('adaptive scores', () => {
  interface Setup {
    id: string;
    capacity?: number;
    /** Outcomes recorded before the pick (true = ok). */
    outcomes?: boolean[];
    inFlight?: number;
  }

  function adaptive(setups: readonly Setup[], errorWindow = 20): Router {
    const routed = router({ policy: 'adaptive', errorWindow }, setups.map(({ id, capacity }) => ({ id, ...(capacity === undefined ? {} : { capacity }) })));
    for (const { id, outcomes = [], inFlight = 0 } of setups) {
      for (const ok of outcomes) {
        routed.dispatched(id);
        routed.completed(id, { ok });
      }
      for (let i = 0; i < inFlight; i++) routed.dispatched(id);
    }
    return routed;
  }

  it.each<[string, Setup[], number | undefined, string]>([
    ['all fresh: a tie, the first', [{ id: 'a' }, { id: 'b' }], undefined, 'a'],
    ['a failed its only task (score 0)', [{ id: 'a', outcomes: [false] }, { id: 'b' }], undefined, 'b'],
    // a: 1 / (1 + 1) = 0.5; b: 0.5 / 1 = 0.5; c: 0.75 / 1 = 0.75.
    ['c: 1 failure in 4 beats a busy a and a half-failing b', [{ id: 'a', inFlight: 1 }, { id: 'b', outcomes: [true, false] }, { id: 'c', outcomes: [true, true, true, false] }], undefined, 'c'],
    // a: 1 / (1 + 2/4) = 0.667; b: 0.75.
    ['load counts against capacity', [{ id: 'a', capacity: 4, inFlight: 2 }, { id: 'b', outcomes: [true, true, true, false] }], undefined, 'b'],
    // a: 1 / (1 + 1/3) and b: (1 − 1/4) / 1 are both 0.75 on paper: a tie, the first.
    ['equal scores tie despite rounding', [{ id: 'a', capacity: 3, inFlight: 1 }, { id: 'b', outcomes: [true, true, true, false] }], undefined, 'a'],
    // a: 1 over its last 2 outcomes, 0.5 over all 4; b: 1 / (1 + 1/3) = 0.75.
    ['the error rate counts only the last errorWindow outcomes', [{ id: 'a', outcomes: [false, false, true, true] }, { id: 'b', capacity: 3, inFlight: 1 }], 2, 'a'],
    ['… all of them by default', [{ id: 'a', outcomes: [false, false, true, true] }, { id: 'b', capacity: 3, inFlight: 1 }], undefined, 'b'],
  ])('%s → %s', (_name, setups, errorWindow, expected) => {
    expect(adaptive(setups, errorWindow).pick()).toBe(expected);
  });

  it('every probeEvery-th pick goes to the target picked least recently', () => {
    const routed = router({ policy: 'adaptive', probeEvery: 3 }, [{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    routed.dispatched('c');
    routed.completed('c', { ok: false });
    // c scores 0; picks 3 and 6 are probes (c never picked, then the least recent).
    expect(run(routed, Array.from({ length: 7 }, () => undefined))).toBe('a b c a b c a');
  });

  it('probeEvery: Infinity never probes', () => {
    const routed = router({ policy: 'adaptive', probeEvery: Infinity }, [{ id: 'a' }, { id: 'b' }]);
    routed.dispatched('b');
    routed.completed('b', { ok: false });
    expect(run(routed, Array.from({ length: 30 }, () => undefined))).not.toContain('b');
  });

  it('shifts traffic away from a failing worker, still probes it, and returns traffic once it recovers', () => {
    const routed = router({ policy: 'adaptive', errorWindow: 5, probeEvery: 10 }, ['w1', 'w2', 'w3', 'w4', 'w5'].map((id) => ({ id })));
    let broken = true;
    const picks: string[] = [];
    const inFlight: string[] = [];
    for (let task = 0; task < 300; task++) {
      if (task === 100) broken = false;
      const id = routed.pick() as string;
      routed.dispatched(id);
      picks.push(id);
      inFlight.push(id);
      // Two tasks stay in flight; the oldest answers.
      if (inFlight.length > 2) {
        const done = inFlight.shift() as string;
        routed.completed(done, { ok: !(broken && done === 'w3') });
      }
    }
    const w3 = (from: number, to: number): number[] => picks.map((id, i) => (id === 'w3' && i >= from && i < to ? i + 1 : 0)).filter((n) => n > 0);
    // Broken (once its first failure is known): only the probes, every 10th pick.
    expect(w3(20, 100)).toEqual([30, 40, 50, 60, 70, 80, 90, 100]);
    // Recovered: each successful probe lowers its error rate; after 5 (its window) it has a full share.
    expect(w3(100, 140)).toEqual([110, 120, 130, 140]);
    expect(w3(160, 300)).toHaveLength(28);
    expect(routed.snapshot().find((t) => t.id === 'w3')).toMatchObject({ failed: 10, errorRate: 0 });
  });
});

describe('fair sharing', () => {
  const WORKERS = ['w1', 'w2', 'w3', 'w4', 'w5'];

  // Equal workers answer in the order they were sent (a seeded number of answers after each task).
  it.each(['round-robin', 'least-loaded', 'capability'] as const)('%s: 100 tasks over 5 equal workers, within 5 %% of the mean', (policy) => {
    for (let seed = 1; seed <= 20; seed++) {
      const rng = Rng.seeded(seed);
      const routed = router({ policy }, WORKERS.map((id) => ({ id, capabilities: ['trade'] })));
      const inFlight: string[] = [];
      for (let task = 0; task < 100; task++) {
        const id = routed.pick(policy === 'capability' ? { capability: 'trade' } : {}) as string;
        routed.dispatched(id);
        inFlight.push(id);
        for (let answers = rng.int(0, 2); answers > 0 && inFlight.length > 0; answers--) routed.completed(inFlight.shift() as string, { ok: true });
      }
      const counts = routed.snapshot().map((target) => target.dispatched);
      expect(Math.max(...counts.map((count) => Math.abs(count - 20)))).toBeLessThan(0.05 * 20);
    }
  });

  it('round-robin stays even when answers come back in any order', () => {
    const rng = Rng.seeded(7);
    const routed = router({ policy: 'round-robin' }, WORKERS.map((id) => ({ id })));
    const inFlight: string[] = [];
    for (let task = 0; task < 100; task++) {
      const id = routed.pick() as string;
      routed.dispatched(id);
      inFlight.push(id);
      for (let answers = rng.int(0, 2); answers > 0 && inFlight.length > 0; answers--) {
        routed.completed(inFlight.splice(rng.int(0, inFlight.length - 1), 1)[0] as string, { ok: true });
      }
    }
    expect(routed.snapshot().map((target) => target.dispatched)).toEqual([20, 20, 20, 20, 20]);
  });
});

describe('capability filter (seeded)', () => {
  it.each(ROUTING_POLICIES)('%s never sends a task to a target without its capability, and finds one whenever one exists', (policy) => {
    const CAPABILITIES = ['x', 'y', 'z'];
    let routedTasks = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const rng = Rng.seeded(seed);
      const targets = Array.from({ length: rng.int(1, 6) }, (_, i) => ({ id: `t${i}`, capabilities: CAPABILITIES.filter(() => rng.next() < 0.4), capacity: rng.int(1, 3) }));
      const sequence = (): string[] => {
        const local = Rng.seeded(seed * 1000);
        const routed = router({ policy, errorWindow: 4, probeEvery: 5 }, targets);
        const inFlight: string[] = [];
        const out: string[] = [];
        for (let task = 0; task < 60; task++) {
          const capability = local.next() < 0.2 ? undefined : local.pick(CAPABILITIES);
          const id = routed.pick(capability === undefined ? {} : { capability });
          const able = targets.filter((t) => capability === undefined || t.capabilities.includes(capability));
          if (able.length === 0) expect(id).toBeUndefined();
          else {
            expect(able.map((t) => t.id)).toContain(id);
            routed.dispatched(id as string);
            inFlight.push(id as string);
            routedTasks += 1;
          }
          while (inFlight.length > 0 && local.next() < 0.5) routed.completed(inFlight.splice(local.int(0, inFlight.length - 1), 1)[0] as string, { ok: local.next() < 0.8 });
          out.push(id ?? '-');
        }
        return out;
      };
      // Deterministic: the same calls give the same picks.
      expect(sequence()).toEqual(sequence());
    }
    expect(routedTasks).toBeGreaterThan(1000);
  });
});

describe('targets come and go', () => {
  it('remove() mid-stream: the rotation goes on over the others, and a late answer from the removed one is ignored', () => {
    const routed = router({ policy: 'round-robin' }, [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }]);
    expect(run(routed, [undefined, undefined])).toBe('a b');
    expect(routed.remove('b')).toBe(true);
    expect(routed.has('b')).toBe(false);
    expect(routed.remove('b')).toBe(false);
    expect(run(routed, [undefined, undefined, undefined, undefined])).toBe('c d a c');
    routed.completed('b', { ok: false });
    expect(routed.snapshot().map((t) => t.id)).toEqual(['a', 'c', 'd']);
    // Removing the target the cursor points at moves it to the next one.
    expect(routed.remove('d')).toBe(true);
    expect(run(routed, [undefined, undefined])).toBe('a c');
    // Re-added, it starts fresh, at the end of the order.
    routed.add({ id: 'b' });
    expect(routed.snapshot().find((t) => t.id === 'b')).toEqual({ id: 'b', capabilities: [], capacity: 1, inFlight: 0, dispatched: 0, completed: 0, failed: 0, errorRate: 0, healthy: true });
    expect(run(routed, [undefined, undefined, undefined])).toBe('a c b');
  });

  it.each(['least-loaded', 'capability', 'adaptive'] as const)('%s: remove() mid-stream shares the rest evenly among the others', (policy) => {
    const routed = router({ policy }, ['w1', 'w2', 'w3', 'w4', 'w5'].map((id) => ({ id })));
    const inFlight: string[] = [];
    for (let task = 0; task < 100; task++) {
      if (task === 50) routed.remove('w2');
      const id = routed.pick() as string;
      routed.dispatched(id);
      inFlight.push(id);
      if (inFlight.length > 3) routed.completed(inFlight.shift() as string, { ok: true });
    }
    // 50 before (10 each), 50 after over four (12 or 13 each); w2's 10 left with it.
    const counts = Object.fromEntries(routed.snapshot().map((t) => [t.id, t.dispatched]));
    expect(Object.keys(counts)).toEqual(['w1', 'w3', 'w4', 'w5']);
    for (const count of Object.values(counts)) expect([22, 23]).toContain(count);
    expect(Object.values(counts).reduce((sum, count) => sum + count, 0)).toBe(90);
  });

  it('counts dispatches, completions and failures; in-flight never goes below 0', () => {
    const routed = router({ policy: 'least-loaded' }, [{ id: 'a', capabilities: ['x', 'x'], capacity: 2 }]);
    routed.dispatched('a');
    routed.dispatched('a');
    routed.completed('a', { ok: true });
    routed.completed('a', { ok: false });
    routed.completed('a', { ok: true });
    expect(routed.snapshot()).toEqual([{ id: 'a', capabilities: ['x'], capacity: 2, inFlight: 0, dispatched: 2, completed: 3, failed: 1, errorRate: 1 / 3, healthy: true }]);
  });
});

describe('bad input', () => {
  it.each<[Partial<RouterOptions>, string]>([
    [{ policy: 'random' as RoutingPolicy }, "policy: must be one of 'round-robin', 'least-loaded', 'capability', 'adaptive', got \"random\""],
    [{ errorWindow: 0 }, 'errorWindow: must be a whole number of outcomes >= 1, got 0'],
    [{ errorWindow: 2.5 }, 'errorWindow: must be a whole number of outcomes >= 1, got 2.5'],
    [{ probeEvery: 0 }, 'probeEvery: must be a whole number of picks >= 1 (or Infinity never to probe), got 0'],
    [{ probeEvery: Number.NaN }, 'probeEvery: must be a whole number of picks >= 1'],
  ])('rejects the option %o', (options, message) => {
    const build = (): unknown => createRouter({ policy: 'adaptive', ...options });
    expect(build).toThrow(InvalidInputError);
    expect(build).toThrow(message);
  });

  it('compiles defaults into a readonly config', () => {
    const config = compileRouterOptions({ policy: 'adaptive' });
    expect(config).toEqual({ policy: 'adaptive', errorWindow: 20, probeEvery: 10 });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each<[RouteTarget, string]>([
    [{ id: 'a' }, 'target.id: "a" is already a target'],
    [{ id: '' }, 'target.id: must be a non-empty string'],
    [{ id: 'b', capacity: 0 }, 'target.capacity: must be a finite number > 0'],
    [{ id: 'b', capacity: Infinity }, 'target.capacity: must be a finite number > 0'],
    [{ id: 'b', capabilities: 'x' as unknown as string[] }, 'target.capabilities: must be a list of non-empty strings'],
  ])('add rejects %o', (target, message) => {
    const routed = router({ policy: 'round-robin' }, [{ id: 'a' }]);
    expect(() => routed.add(target)).toThrow(InvalidInputError);
    expect(() => routed.add(target)).toThrow(message);
  });

  it('pick rejects an empty capability; dispatched rejects an unknown target', () => {
    const routed = router({ policy: 'round-robin' }, [{ id: 'a' }]);
    expect(() => routed.pick({ capability: '' })).toThrow('task.capability: must be a non-empty string when given');
    expect(() => routed.dispatched('zz')).toThrow('id: "zz" is not a target of this router');
  });
});
