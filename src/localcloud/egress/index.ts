export { EgressAuthority } from './authority.js';
export { needsProxy } from './policy.js';
export { startEgressProxy, type EgressProxy, type EgressClient } from './proxy.js';
