import { describe, expect, it } from 'vitest';
import { type AgentLifecycle, type AgentLifecycleEvent, LifecycleError, canTransition, transition } from './lifecycle.js';

const STATES: readonly AgentLifecycle[] = ['deploying', 'running', 'recovering', 'gone', 'stopping', 'stopped'];
const EVENTS: readonly AgentLifecycleEvent[] = ['ready', 'lost', 'recovered', 'abandoned', 'stop', 'exited'];

/** Every move the table allows; any other pair is refused. */
const ALLOWED: ReadonlyArray<[AgentLifecycle, AgentLifecycleEvent, AgentLifecycle]> = [
  ['deploying', 'ready', 'running'],
  ['deploying', 'stop', 'stopping'],
  ['running', 'lost', 'recovering'],
  ['running', 'abandoned', 'gone'],
  ['running', 'stop', 'stopping'],
  ['recovering', 'recovered', 'running'],
  ['recovering', 'lost', 'recovering'],
  ['recovering', 'abandoned', 'gone'],
  ['recovering', 'stop', 'stopping'],
  ['stopping', 'exited', 'stopped'],
];

describe('the agent lifecycle table', () => {
  it.each(ALLOWED)('%s --%s--> %s', (from, event, to) => {
    expect(canTransition(from, event)).toBe(true);
    expect(transition(from, event)).toBe(to);
  });

  it('refuses every other pair with a LifecycleError naming it', () => {
    const refused = STATES.flatMap((state) => EVENTS.map((event) => [state, event] as const)).filter(([state, event]) => !ALLOWED.some(([from, on]) => from === state && on === event));
    expect(refused).toHaveLength(STATES.length * EVENTS.length - ALLOWED.length);
    for (const [state, event] of refused) {
      expect(canTransition(state, event)).toBe(false);
      expect(() => transition(state, event)).toThrow(LifecycleError);
      expect(() => transition(state, event)).toThrow(`an agent that is ${state} cannot be ${event}`);
    }
  });

  it('has no way back from gone or stopped', () => {
    for (const event of EVENTS) {
      expect(canTransition('gone', event)).toBe(false);
      expect(canTransition('stopped', event)).toBe(false);
    }
  });
});
