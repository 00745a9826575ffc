import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, silentLogger } from '../../core/index.js';
import { IsolationUnavailableError } from '../errors.js';
import type { IsolationSupport } from '../isolation/index.js';
import { TemplateRegistry } from '../templates/index.js';
import { SandboxManager } from './manager.js';

const FULL: IsolationSupport = { namespaces: true, networkNamespace: true, routedNetworkMissing: [], disk: true, cgroups: { memory: true, pids: true, freezer: true, cpuacct: true, cpu: true }, problems: [] };
const folders: string[] = [];

/** A manager on a host that can do only what `support` says. */
function managerOn(support: IsolationSupport): { manager: SandboxManager; dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'tradeswarm-manager-'));
  folders.push(dataDir);
  const manager = new SandboxManager({
    clock: new ManualClock(),
    logger: silentLogger,
    templates: new TemplateRegistry(),
    support,
    dataDir,
    instance: `srv-${process.pid}-refusals`,
    kernelsDir: dataDir,
    defaultTimeoutSeconds: 300,
    maxTimeoutSeconds: 3600,
    maxSandboxes: 10,
    metricsIntervalMs: 0,
    warmPoolSize: 0,
  });
  return { manager, dataDir };
}

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

describe('SandboxManager refuses what the host cannot isolate', () => {
  it.each([
    ['no PID and mount namespaces', { ...FULL, namespaces: false }, {}, /PID and mount namespaces/],
    ['no network namespace, internet off', { ...FULL, networkNamespace: false }, { allowInternetAccess: false }, /private network namespace/],
    ['no memory cgroup', { ...FULL, cgroups: { ...FULL.cgroups, memory: false } }, {}, /memory and process limits/],
    ['no pids cgroup', { ...FULL, cgroups: { ...FULL.cgroups, pids: false } }, {}, /memory and process limits/],
    ['no loop devices or mkfs.ext4', { ...FULL, disk: false }, {}, /a disk of its own/],
    ['no nft, egress rules', { ...FULL, routedNetworkMissing: ['nft (/usr/sbin/nft: apt-get install nftables)'] }, { egress: { allowOut: [], denyOut: ['1.1.1.1/32'] } }, /a routed network with an egress firewall .*: it lacks nft \(\/usr\/sbin\/nft: apt-get install nftables\)/],
  ])('%s: refused with 503 before anything is started', async (_name, support, request, message) => {
    const { manager, dataDir } = managerOn(support);
    const refusal = await manager.create({ templateId: 'base', ...request }).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(IsolationUnavailableError);
    expect((refusal as IsolationUnavailableError).status).toBe(503);
    expect((refusal as Error).message).toMatch(message);
    expect((refusal as Error).message).toMatch(/the sandbox was not started/);
    expect(readdirSync(dataDir)).toEqual([]);
    expect(manager.size).toBe(0);
  });

  it('still runs internet-enabled sandboxes on a host without network namespaces (nothing is asked that it cannot give)', async () => {
    const { manager } = managerOn({ ...FULL, networkNamespace: false });
    const sandbox = await manager.create({ templateId: 'base' });
    try {
      expect(sandbox.state).toBe('running');
    } finally {
      await manager.close();
    }
    expect(existsSync(`/sys/fs/cgroup/pids/tradeswarm/srv-${process.pid}-refusals`)).toBe(false);
  });
});
