import { fileURLToPath } from 'node:url';

/** The agent process's entry file, which the control plane bundles and deploys into sandboxes. */
export const AGENT_ENTRY = fileURLToPath(new URL('./main.ts', import.meta.url));

export {
  AGENT_ENV,
  AGENT_KINDS,
  CONTROL_PLANE_ID,
  agentConfigSchema,
  swarmRegistry,
  StepMessage,
  SignalMessage,
  DecisionMessage,
  OrdersMessage,
  OrdersResultMessage,
  StepRefusedMessage,
  ReplayMessage,
  ReplayDoneMessage,
  TaskMessage,
  TaskResultMessage,
  ProbeMessage,
  type AgentConfig,
  type AgentKind,
  type StepPayload,
  type IntentPayload,
  type RejectionPayload,
  type OrderResultPayload,
} from './protocol.js';
export { AgentRuntime, digestOf, type AgentExit, type AgentCounters, type AgentRuntimeOptions } from './runtime.js';
export { RingBreaker, RING_BREAKER_TRANSITIONS, ringBreakerTransition, type RingBreakerState, type RingBreakerEvent } from './breaker.js';
