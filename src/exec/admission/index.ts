export { FairQueue, type FairQueueOptions, type FairQueueStats } from './fairqueue.js';
export { SandboxResilience, isTransient, type ResilienceOptions, type BreakerState } from './resilience.js';
