/** The states of a local sandbox. */
export const SandboxState = {
  running: 'running',
  paused: 'paused',
  killed: 'killed',
} as const;
export type SandboxState = (typeof SandboxState)[keyof typeof SandboxState];

export type SandboxEvent = 'pause' | 'resume' | 'kill' | 'expire' | 'expireToPause';

const TRANSITIONS: Readonly<Record<SandboxState, Partial<Record<SandboxEvent, SandboxState>>>> = {
  running: { pause: 'paused', kill: 'killed', expire: 'killed', expireToPause: 'paused' },
  paused: { resume: 'running', kill: 'killed' },
  killed: {},
};

/** The next state. @throws when the event is not allowed in this state. */
export function transition(state: SandboxState, event: SandboxEvent): SandboxState {
  const next = TRANSITIONS[state][event];
  if (next === undefined) throw new Error(`a ${state} sandbox cannot ${event}`);
  return next;
}
