import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The agent process's entry file, which the control plane bundles and deploys into sandboxes: `main`
 * beside this file, compiled like it (`dist/agent/main.js` in the build, `src/agent/main.ts` from the
 * sources; scripts/build.ts).
 */
export const AGENT_ENTRY = fileURLToPath(new URL(`./main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export {
  AGENT_ENV,
  CONTROL_PLANE_ID,
  swarmRegistry,
  StepMessage,
  SignalMessage,
  DecisionMessage,
  OrdersMessage,
  OrdersResultMessage,
  StepRefusedMessage,
  ReplayMessage,
  TaskMessage,
  TaskResultMessage,
  ProbeMessage,
  HealthRequestMessage,
  HealthReportMessage,
  type AgentConfig,
  agentConfigSchema,
  type Resume,
  resumeSchema,
  type StepPayload,
  type IntentPayload,
} from './protocol.js';
export { AgentRuntime, type AgentExit, type AgentRuntimeOptions } from './runtime.js';
