export { probeIsolation, CGROUP_CONTROLLERS, type CgroupController, type IsolationSupport } from './probe.js';
export { SandboxCgroups, cleanStaleCgroups, type CgroupLimits } from './cgroups.js';
export { startInit, spawnInSandbox, initScript, SANDBOX_USER_ID, type SandboxDirs, type InitSpec, type SandboxInit, type SpawnSpec, type SandboxProcess } from './launcher.js';
