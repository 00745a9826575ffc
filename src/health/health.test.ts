import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { type HealthObservation, assessHealth, compileHealthThresholds, worseOf } from './health.js';

const THRESHOLDS = compileHealthThresholds({ heartbeatMs: 100, agentTimeoutMs: 1_000, maxLagSteps: 5, checkpointEverySteps: 10 });
const MIB = 2 ** 20;

/** A healthy agent's observation; `changes` make it less so. */
function seen(changes: Partial<HealthObservation> = {}): HealthObservation {
  return {
    lifecycle: 'running',
    heartbeatAgeMs: 40,
    sandbox: { state: 'running', resources: { cpuUsedPct: 12, memUsedBytes: 100 * MIB, memTotalBytes: 512 * MIB } },
    report: { lastStep: 41, checkpointedUpTo: 39, errors: 2, replaying: false, halted: null },
    previousErrors: 2,
    currentStep: 42,
    checkpoints: true,
    ...changes,
  };
}

const report = (changes: Partial<NonNullable<HealthObservation['report']>>): HealthObservation['report'] => ({ ...(seen().report as NonNullable<HealthObservation['report']>), ...changes });

describe('assessHealth', () => {
  it('finds a running, beating, current agent with room healthy, with no reasons', () => {
    expect(assessHealth(seen(), THRESHOLDS)).toEqual({ status: 'healthy', reasons: [] });
  });

  it.each([
    ['its sandbox is gone', seen({ sandbox: { state: 'gone', resources: null } }), 'unreachable', 'sandbox', 'sandbox-gone'],
    ['its sandbox is paused', seen({ sandbox: { state: 'paused', resources: null } }), 'unreachable', 'sandbox', 'sandbox-paused'],
    ['the provider does not answer', seen({ sandbox: { state: 'unknown', resources: null } }), 'degraded', 'sandbox', 'provider-unreachable'],
    ['no heartbeat past the agent timeout', seen({ heartbeatAgeMs: 1_500 }), 'unreachable', 'agent', 'heartbeat-silent'],
    ['a heartbeat later than two intervals', seen({ heartbeatAgeMs: 250 }), 'degraded', 'agent', 'heartbeat-late'],
    ['lost for good', seen({ lifecycle: 'gone', report: null }), 'unreachable', 'agent', 'gone'],
    ['a restart under way', seen({ lifecycle: 'recovering', report: null }), 'unhealthy', 'agent', 'recovering'],
    ['no answer to the health request', seen({ report: null }), 'degraded', 'agent', 'no-health-answer'],
    ['halted (a spoke without its hub)', seen({ report: report({ halted: 'hub-lost' }) }), 'unhealthy', 'agent', 'halted'],
    ['its replay under way', seen({ report: report({ replaying: true, lastStep: 3 }) }), 'degraded', 'agent', 'replaying'],
    ['three steps behind', seen({ report: report({ lastStep: 39 }) }), 'degraded', 'agent', 'lagging'],
    ['more steps behind than maxLagSteps', seen({ report: report({ lastStep: 30, checkpointedUpTo: 29 }) }), 'unhealthy', 'agent', 'lagging'],
    ['new errors since the last check', seen({ report: report({ errors: 5 }) }), 'degraded', 'agent', 'errors'],
    ['a checkpoint older than twice the interval', seen({ report: report({ checkpointedUpTo: 9 }) }), 'degraded', 'agent', 'checkpoint-stale'],
    ['memory at 85%', seen({ sandbox: { state: 'running', resources: { cpuUsedPct: 5, memUsedBytes: 435 * MIB, memTotalBytes: 512 * MIB } } }), 'degraded', 'resources', 'memory'],
    ['memory at 97%', seen({ sandbox: { state: 'running', resources: { cpuUsedPct: 5, memUsedBytes: 497 * MIB, memTotalBytes: 512 * MIB } } }), 'unhealthy', 'resources', 'memory'],
    ['CPU at 99%', seen({ sandbox: { state: 'running', resources: { cpuUsedPct: 99, memUsedBytes: MIB, memTotalBytes: 512 * MIB } } }), 'degraded', 'resources', 'cpu'],
  ] as const)('%s: %s by the %s level (%s)', (_, observation, status, level, code) => {
    const health = assessHealth(observation, THRESHOLDS);
    expect(health.status).toBe(status);
    expect(health.reasons).toContainEqual(expect.objectContaining({ level, status, code }));
  });

  it('gives every reason, the worst deciding the status', () => {
    const health = assessHealth(seen({ heartbeatAgeMs: 5_000, sandbox: { state: 'paused', resources: null }, report: null }), THRESHOLDS);
    expect(health.status).toBe('unreachable');
    expect(health.reasons.map((reason) => reason.code)).toEqual(['sandbox-paused', 'heartbeat-silent', 'no-health-answer']);
    expect(health.reasons[1]?.detail).toBe('no heartbeat for 5000 ms (agent timeout 1000 ms)');
  });

  it('does not hold an agent that never checkpoints (a ring entry) to a checkpoint age, nor a first check to new errors', () => {
    expect(assessHealth(seen({ checkpoints: false, report: report({ checkpointedUpTo: -1 }) }), THRESHOLDS).status).toBe('healthy');
    expect(assessHealth(seen({ previousErrors: null, report: report({ errors: 9 }) }), THRESHOLDS).status).toBe('healthy');
  });
});

describe('worseOf and compileHealthThresholds', () => {
  it('orders healthy < degraded < unhealthy < unreachable', () => {
    expect(worseOf('healthy', 'degraded')).toBe('degraded');
    expect(worseOf('unreachable', 'unhealthy')).toBe('unreachable');
  });

  it('refuses thresholds that cannot work, naming the field', () => {
    expect(() => compileHealthThresholds({ heartbeatMs: 0, agentTimeoutMs: 1, maxLagSteps: 1, checkpointEverySteps: 1 })).toThrow(InvalidInputError);
    expect(() => compileHealthThresholds({ heartbeatMs: 1, agentTimeoutMs: 1, maxLagSteps: 1, checkpointEverySteps: 1, memoryDegradedFraction: 0.99, memoryUnhealthyFraction: 0.9 })).toThrow(/memoryDegradedFraction/);
  });
});
