export { probeIsolation, CGROUP_CONTROLLERS, type CgroupController, type IsolationSupport } from './probe.js';
export { SandboxCgroups, cleanStaleCgroups, removeInstanceCgroups, type CgroupLimits } from './cgroups.js';
export { GuestSupervisor, GuestProcess, type GuestExit, type GuestSpawnOptions, type TerminalSize } from './guest.js';
export { startInit, spawnInSandbox, assembleSpec, SANDBOX_USER_ID, GUEST_HOST_DIR, GUEST_BIN_DIR, type SandboxDirs, type InitSpec, type SandboxInit, type SpawnSpec, type SandboxProcess, type SandboxCapability } from './launcher.js';
export { TemplateDisks, type DiskTemplate } from './disk.js';
export { SandboxLink, cleanStaleFirewalls, rulesetOf, slotAddresses, tableNameOf, NO_EGRESS_RULES, SANDBOX_SUBNET, ALL_TRAFFIC, deniesAllTraffic, type EgressRule, type EgressRules } from './firewall.js';
