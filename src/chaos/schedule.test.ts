import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, type ScheduleOptions, planSchedule } from './schedule.js';

const base: ScheduleOptions = {
  seed: 16,
  steps: 2_000,
  kinds: FAULT_KINDS,
  agents: ['trader-0', 'trader-1', 'trader-2', 'trader-3', 'trader-4'],
  pauseMs: { min: 3_000, max: 5_000 },
  brokerDownMs: { min: 500, max: 2_000 },
};

describe('planSchedule', () => {
  it('gives the same faults for the same seed, and others for another seed', () => {
    expect(planSchedule(base)).toEqual(planSchedule(base));
    expect(planSchedule({ ...base, seed: 17 })).not.toEqual(planSchedule(base));
  });

  it('injects each kind perKind times, one fault per slot of the run, in order, off the margins', () => {
    const faults = planSchedule(base);
    expect(faults).toHaveLength(18);
    for (const kind of FAULT_KINDS) expect(faults.filter((fault) => fault.kind === kind)).toHaveLength(3);
    expect(faults.map((fault) => fault.seq)).toEqual([...Array(18).keys()]);
    // 100 steps kept free at each end; 1,800 left in 18 slots of 100.
    faults.forEach((fault, i) => {
      expect(fault.atStep).toBeGreaterThanOrEqual(100 + i * 100);
      expect(fault.atStep).toBeLessThan(100 + (i + 1) * 100);
    });
  });

  it('aims agent faults at one of the agents, the others at nobody, and holds pauses and broker downtimes within their ranges', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      for (const fault of planSchedule({ ...base, seed })) {
        if (fault.kind === 'agent-kill' || fault.kind === 'sandbox-kill' || fault.kind === 'pause') expect(base.agents).toContain(fault.agent);
        else expect(fault.agent).toBeNull();
        if (fault.kind === 'pause') expect(fault.holdMs >= 3_000 && fault.holdMs <= 5_000).toBe(true);
        else if (fault.kind === 'broker-restart') expect(fault.holdMs >= 500 && fault.holdMs <= 2_000).toBe(true);
        else expect(fault.holdMs).toBe(0);
      }
    }
  });

  it('keeps the kinds asked for, and their order in the schedule does not depend on the order asked', () => {
    const faults = planSchedule({ ...base, kinds: ['pause', 'agent-kill'], perKind: 2 });
    expect(faults.map((fault) => fault.kind).sort()).toEqual(['agent-kill', 'agent-kill', 'pause', 'pause']);
    expect(planSchedule({ ...base, kinds: ['serve-kill'], perKind: 1, agents: [] })).toHaveLength(1);
  });

  it('refuses what makes no schedule, naming the field', () => {
    expect(() => planSchedule({ ...base, steps: 16 })).toThrow(/^steps: 16 steps leave 14 for 18 faults/);
    expect(() => planSchedule({ ...base, kinds: ['agent-kill', 'reboot' as never] })).toThrow(/^kinds: "reboot" is not a fault; use agent-kill, sandbox-kill, pause, broker-restart, serve-kill, leader-kill$/);
    expect(() => planSchedule({ ...base, kinds: ['pause', 'pause'] })).toThrow(/^kinds: names a kind twice/);
    expect(() => planSchedule({ ...base, agents: [] })).toThrow(/^agents: must name at least one agent/);
    expect(() => planSchedule({ ...base, perKind: -1 })).toThrow(/^perKind: /);
    expect(() => planSchedule({ ...base, pauseMs: { min: 5, max: 1 } })).toThrow(/^pauseMs: /);
    expect(() => planSchedule({ ...base, marginShare: 0.5 })).toThrow(/^marginShare: /);
  });
});
