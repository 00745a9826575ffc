import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CommandExitError, Sandbox, SandboxError } from 'e2b';
import { Sandbox as CodeSandbox } from '@e2b/code-interpreter';
import { silentLogger } from '../../src/core/index.js';
import { startLocalCloud } from '../../src/localcloud/index.js';
import { describeLocal, useBackend } from '../fixtures/backend.js';
import { waitFor } from '../fixtures/localcloud.js';

/** Why none of this runs on E2B cloud: its targets are addresses of this machine, and it looks at the host's links and nftables. */
const LOCAL_ONLY = "egress firewall internals: the addresses it reaches are this machine's, and it checks the host's veth links and nftables tables";
const backend = useBackend();
const cloud = () => backend().local;
const allTraffic = '0.0.0.0/0';

// Two addresses of this host, on a link of the test's own (a veth pair: this kernel has no dummy
// links): a routed sandbox reaches them through its gateway, as it would reach any address beyond the host.
const DUMMY = `tswtest${process.pid % 10_000}`;
const A = '198.51.100.7';
const B = '198.51.100.8';
let server: Server;
let port = 0;

beforeAll(async () => {
  execFileSync('ip', ['link', 'add', DUMMY, 'type', 'veth', 'peer', 'name', `${DUMMY}p`]);
  execFileSync('ip', ['link', 'set', `${DUMMY}p`, 'up']);
  execFileSync('ip', ['addr', 'add', `${A}/32`, 'dev', DUMMY]);
  execFileSync('ip', ['addr', 'add', `${B}/32`, 'dev', DUMMY]);
  execFileSync('ip', ['link', 'set', DUMMY, 'up']);
  server = createServer((_request, response) => response.end('reached')).listen(0, '0.0.0.0');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  server?.close();
  execFileSync('ip', ['link', 'del', DUMMY]);
});

/** What `curl` in the sandbox gets from the test's server at `address`: its body, or `exit <code>` when refused. */
async function reach(sandbox: Sandbox, address: string, user: 'user' | 'root' = 'user'): Promise<string> {
  try {
    return (await sandbox.commands.run(`curl -sS --connect-timeout 3 --max-time 5 http://${address}:${port}/`, { user })).stdout;
  } catch (error) {
    if (error instanceof CommandExitError) return `exit ${error.exitCode}`;
    throw error;
  }
}

function nftTables(): string {
  return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
}

/** The host side of a local sandbox's routed network: its veth and firewall table. */
function linkOf(sandbox: Sandbox): { name: string; table: string; gateway: string } {
  const link = cloud().sandboxes.get(sandbox.sandboxId).link;
  if (!link) throw new Error(`sandbox ${sandbox.sandboxId} has no routed network`);
  return { name: link.name, table: link.table, gateway: link.gateway };
}

// curl's exit code 7: could not connect (the firewall's TCP reset), at once rather than at a timeout.
const REFUSED = 'exit 7';

describeLocal('egress firewall: network.allowOut and denyOut', LOCAL_ONLY, () => {
  it('denies an address in denyOut and reaches the others; allowOut beats denyOut of all traffic, which alone denies everything', async () => {
    const [denying, allowing, closed] = await Promise.all([
      Sandbox.create('base', { ...cloud().connection, network: { denyOut: [A] } }),
      Sandbox.create('base', { ...cloud().connection, network: { denyOut: ({ allTraffic: all }) => [all], allowOut: ['198.51.100.5/30'] } }),
      Sandbox.create('base', { ...cloud().connection, network: { denyOut: [allTraffic] } }),
    ]);
    try {
      expect(await reach(denying, A)).toBe(REFUSED);
      expect(await reach(denying, B)).toBe('reached');
      expect(await reach(denying, linkOf(denying).gateway)).toBe('reached');
      // Its 127.0.0.1 is its own loopback: the host's 127.0.0.1 services are out of its reach.
      expect(await reach(denying, '127.0.0.1')).toBe(REFUSED);

      expect(await reach(allowing, A)).toBe('reached');
      expect(await reach(allowing, B)).toBe(REFUSED);
      expect(await reach(allowing, linkOf(allowing).gateway)).toBe(REFUSED);
      // A bare address is a /32, and a CIDR is kept as its network.
      expect((await Sandbox.getInfo(denying.sandboxId, cloud().connection)).network).toMatchObject({ allowOut: [], denyOut: [`${A}/32`] });
      expect((await allowing.getInfo()).network).toMatchObject({ allowOut: ['198.51.100.4/30'], denyOut: [allTraffic] });

      expect([await reach(closed, A), await reach(closed, B), await reach(closed, linkOf(closed).gateway)]).toEqual([REFUSED, REFUSED, REFUSED]);
    } finally {
      await Promise.all([denying.kill(), allowing.kill(), closed.kill()]);
    }
  });

  it("holds against the sandbox's root and the code interpreter, and other sandboxes are out of reach", async () => {
    const [sandbox, other] = await Promise.all([
      CodeSandbox.create('code-interpreter-v1', { ...cloud().connection, network: { denyOut: [A] } }),
      Sandbox.create('base', { ...cloud().connection, network: { denyOut: [] } }),
    ]);
    try {
      const attempts = await sandbox.commands.run('for c in "nft flush ruleset" "ip route del default" "ip addr flush dev eth0" "ip link set eth0 down"; do $c 2>/dev/null; echo "$c: $?"; done', { user: 'root' });
      expect(attempts.stdout).toBe('nft flush ruleset: 1\nip route del default: 2\nip addr flush dev eth0: 255\nip link set eth0 down: 2\n');
      expect((await sandbox.commands.run('sudo nft flush ruleset 2>&1; echo "sudo: $?"')).stdout).toMatch(/Operation not permitted[\s\S]*sudo: 1\n$/);
      expect(await reach(sandbox, A, 'root')).toBe(REFUSED);
      expect(await reach(sandbox, B, 'root')).toBe('reached');
      // The interpreter's kernels are started from the host (nsenter): in the sandbox's network too.
      const fetched = await sandbox.runCode(`import urllib.request\ntry:\n    print(urllib.request.urlopen('http://${A}:${port}/', timeout=5).read())\nexcept OSError as error:\n    print(type(error).__name__)`);
      expect(fetched.logs.stdout.join('')).toBe('URLError\n');
      const otherAddress = cloud().sandboxes.get(other.sandboxId).link!.address;
      await other.commands.run('/usr/bin/python3 -m http.server 8000 --bind 0.0.0.0', { background: true });
      await other.commands.run('for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8000/ && exit 0; sleep 0.1; done; exit 1');
      const between = await sandbox.commands.run(`curl -sS --connect-timeout 3 http://${otherAddress}:8000/`).catch((error: unknown) => error);
      expect((between as CommandExitError).exitCode).toBe(7);
    } finally {
      await Promise.all([sandbox.kill(), other.kill()]);
    }
  });

  it('refuses domain names in denyOut, IPv6, malformed rules and egressProxy with a 400 that names the field and says what is supported', async () => {
    const refusal = async (network: Record<string, unknown>): Promise<string> => {
      const error = await Sandbox.create('base', { ...cloud().connection, network } as never).then(
        async (sandbox) => {
          await sandbox.kill();
          return new Error('created');
        },
        (failure: unknown) => failure as Error,
      );
      return error.message;
    };
    expect(await refusal({ allowOut: ['8.8.8.8', 'exa mple.com'] })).toMatch(/^400: body\.network\.allowOut\[1\]: 'exa mple\.com' is not an IPv4 address or CIDR, nor a host name: the local cloud filters IPv4 addresses and CIDRs/);
    expect(await refusal({ denyOut: ['example.com'] })).toMatch(/^400: body\.network\.denyOut\[0\]: 'example\.com' is a domain name, and domain names are not supported for deny rules/);
    expect(await refusal({ denyOut: ['2001:db8::/32'] })).toMatch(/^400: body\.network\.denyOut\[0\]: '2001:db8::\/32' is IPv6/);
    expect(await refusal({ denyOut: ['10.0.0.0/33'] })).toMatch(/^400: body\.network\.denyOut\[0\]: '10\.0\.0\.0\/33' is not an IPv4 address or CIDR/);
    expect(await refusal({ rules: { 'example.com': [{ transform: { headers: { 'X-A': 'b\r\nX-Injected: c' } } }] } })).toBe('400: body.network.rules["example.com"][0].transform.headers["X-A"]: must be a string without line breaks');
    expect(await refusal({ egressProxy: { address: 'proxy.example.com:1080' } })).toMatch(/^400: body\.network\.egressProxy: an upstream SOCKS5 proxy for a sandbox's traffic is not supported/);
  });
});

/** What `curl` in the sandbox prints for `url` with `options`, or `exit <code>` when it fails. */
async function fetchIn(sandbox: Sandbox, url: string, options = ''): Promise<string> {
  try {
    return (await sandbox.commands.run(`curl -sS --max-time 10 ${options} ${url}`)).stdout;
  } catch (error) {
    if (error instanceof CommandExitError) return `exit ${error.exitCode}`;
    throw error;
  }
}

describeLocal('egress proxy: host names in allowOut, and network.rules', LOCAL_ONLY, () => {
  it("lets a sandbox that denies all traffic reach the hosts it names, sets a rule's headers on its HTTPS requests, and refuses the rest saying why", async () => {
    // E2B's own test does this: an httpbin sidecar, reached by its https name, reflects what it was sent.
    const httpbin = await Sandbox.create('httpbin', { ...cloud().connection, network: { allowPublicTraffic: true, denyOut: [] } });
    const other = await Sandbox.create('httpbin', { ...cloud().connection, network: { denyOut: [] } });
    const named = httpbin.getHost(8080);
    const unnamed = other.getHost(8080);
    const sandbox = await Sandbox.create('base', {
      ...cloud().connection,
      network: { denyOut: [allTraffic], allowOut: [named], rules: { [named]: [{ transform: { headers: { 'X-Test-Token': 'from-the-rule' } } }] } },
    });
    try {
      // Retried while the sidecar's server starts (its template's start command runs in the background).
      const reflected = JSON.parse(await fetchIn(sandbox, `https://${named}/headers`, "--retry 5 --retry-connrefused -H 'X-Test-Token: the-programs-own'")) as { headers: Record<string, string[]> };
      expect(reflected.headers['X-Test-Token']).toEqual(['from-the-rule']);
      expect(reflected.headers.Host).toEqual([named]);
      // The same over plain HTTP; a name it does not allow is refused by the proxy, an address by its firewall.
      expect((JSON.parse(await fetchIn(sandbox, `http://${named}/headers`)) as typeof reflected).headers['X-Test-Token']).toEqual(['from-the-rule']);
      expect(await fetchIn(sandbox, `https://${unnamed}/headers`)).toBe('exit 56');
      expect(await fetchIn(sandbox, `http://${unnamed}/headers`)).toBe(`the egress rules of sandbox ${sandbox.sandboxId} refuse ${unnamed}: ${unnamed} (127.0.0.1) is denied by the sandbox's denyOut 0.0.0.0/0, and allowed by none of its allowOut entries\n`);
      expect(await fetchIn(sandbox, `http://${A}:${port}/`, '--noproxy "*" --connect-timeout 3')).toBe(REFUSED);
      // What getInfo reports: the name among allowOut, and the rules.
      const info = await sandbox.getInfo();
      expect(info.network?.allowOut).toEqual([named]);
      expect(info.network?.rules).toEqual({ [named]: [{ transform: { headers: { 'X-Test-Token': 'from-the-rule' } } }] });
    } finally {
      await Promise.all([sandbox.kill(), httpbin.kill(), other.kill()]);
    }
  });

  it("judges an address through the proxy as the firewall does, never reaches the host's loopback, and follows updateNetwork in new processes", async () => {
    const sandbox = await Sandbox.create('base', { ...cloud().connection, network: { denyOut: [A], rules: { [B]: [{ transform: { headers: { 'X-B': 'b' } } }] } } });
    try {
      expect(await fetchIn(sandbox, `http://${B}:${port}/`)).toBe('reached');
      expect(await fetchIn(sandbox, `http://${A}:${port}/`)).toMatch(new RegExp(`^the egress rules of sandbox \\S+ refuse ${A.replaceAll('.', '\\.')}: ${A.replaceAll('.', '\\.')} is denied by the sandbox's denyOut ${A.replaceAll('.', '\\.')}/32`));
      expect(await fetchIn(sandbox, `http://localhost:${port}/`, '--noproxy ""')).toMatch(/the host's own loopback, which no sandbox reaches/);
      // Its processes are pointed at the proxy while its rules need it, and not after.
      expect((await sandbox.commands.run('echo "$https_proxy"')).stdout).toMatch(/^http:\/\/10\.213\.\d+\.\d+:\d+\n$/);
      await sandbox.updateNetwork({ denyOut: [A] });
      expect((await sandbox.commands.run('echo "[$https_proxy]"')).stdout).toBe('[]\n');
      expect(await fetchIn(sandbox, `http://${A}:${port}/`, '--connect-timeout 3')).toBe(REFUSED);
    } finally {
      await sandbox.kill();
    }
  });
});

describeLocal('egress firewall: updateNetwork', LOCAL_ONLY, () => {
  it('replaces the rules of a running sandbox: an address reachable before is denied after, and {} clears them', async () => {
    const routed = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 1, sandboxNetwork: 'routed' });
    // Created with no options, as in E2B's own test: routed because the cloud routes every sandbox.
    const sandbox = await Sandbox.create('base', routed.connection);
    try {
      expect(await reach(sandbox, A)).toBe('reached');
      await sandbox.updateNetwork({ denyOut: [A] });
      expect(await reach(sandbox, A)).toBe(REFUSED);
      expect(await reach(sandbox, B)).toBe('reached');
      await sandbox.updateNetwork({ denyOut: [allTraffic], allowOut: [B] });
      expect([await reach(sandbox, A), await reach(sandbox, B)]).toEqual([REFUSED, 'reached']);
      await sandbox.updateNetwork({});
      expect([await reach(sandbox, A), await reach(sandbox, B)]).toEqual(['reached', 'reached']);
      // allow_internet_access: false in an update denies all traffic, as on E2B.
      await sandbox.updateNetwork({ allowInternetAccess: false });
      expect([await reach(sandbox, A), await reach(sandbox, B)]).toEqual([REFUSED, REFUSED]);
    } finally {
      await sandbox.kill();
      await routed.close();
    }
  });

  it('keeps the rules in force in a fork, with its public traffic and Host mask, and after a filesystem-only pause, an update made while paused included', async () => {
    const sandbox = await Sandbox.create('base', { ...cloud().connection, network: { denyOut: [A], allowPublicTraffic: false, maskRequestHost: 'inside:${PORT}' } });
    const forks: Sandbox[] = [];
    try {
      for (const fork of await sandbox.fork({ count: 1 })) if (fork instanceof Sandbox) forks.push(fork);
      expect(forks).toHaveLength(1);
      expect([await reach(forks[0]!, A), await reach(forks[0]!, B)]).toEqual([REFUSED, 'reached']);
      expect((await forks[0]!.getInfo()).network).toMatchObject({ allowPublicTraffic: false, maskRequestHost: 'inside:${PORT}' });
      await sandbox.pause({ keepMemory: false });
      await sandbox.updateNetwork({ denyOut: [B] });
      await sandbox.connect();
      expect([await reach(sandbox, A), await reach(sandbox, B)]).toEqual(['reached', REFUSED]);
    } finally {
      await Promise.all([sandbox.kill(), ...forks.map((fork) => fork.kill())]);
    }
  });

  it("refuses a sandboxNetwork other than 'host' or 'routed', naming the option", async () => {
    await expect(startLocalCloud({ logger: silentLogger, sandboxNetwork: 'bridge' as never })).rejects.toThrow(`sandboxNetwork: must be 'host' (sandboxes share the host's network) or 'routed' (each its own, behind a firewall), got "bridge"`);
  });

  it("refuses a sandbox on the host's network, saying how to get one it can filter", async () => {
    const sandbox = await Sandbox.create('base', cloud().connection);
    try {
      const refusal = await sandbox.updateNetwork({ denyOut: [A] }).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(SandboxError);
      expect((refusal as Error).message).toMatch(/^409: sandbox \S+ shares the host's network .*network: \{ denyOut: \[\] \}.*--sandbox-network routed/);
      expect(await reach(sandbox, A)).toBe('reached');
      expect(await reach(sandbox, '127.0.0.1')).toBe('reached');
    } finally {
      await sandbox.kill();
    }
  });
});

/** How long a killed sandbox's veth may take to go (the kernel removes it in the background). */
const LINK_GONE_MS = 45_000;

/** Whether the host has a network link of that name now. */
function hasLink(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

describeLocal('egress firewall: nothing is left on the host', LOCAL_ONLY, () => {
  it('removes the veth pair, its addresses and the firewall table when the sandbox is killed, and when the cloud closes', async () => {
    const killed = await Sandbox.create('base', { ...cloud().connection, network: { denyOut: [A] } });
    const { name, table, gateway } = linkOf(killed);
    expect(hasLink(name)).toBe(true);
    expect(nftTables()).toContain(`table inet ${table}\n`);
    await killed.kill();
    expect(nftTables()).not.toContain(`table inet ${table}\n`);
    // The kernel tears a dying namespace's devices down in the background (cleanup_net, under the
    // rtnl lock): on a loaded machine a veth outlived its sandbox's kill by more than 10 s once.
    await waitFor(() => !hasLink(name), `${name} to go`, LINK_GONE_MS);
    expect(execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' })).not.toContain(`${gateway}/30`);

    // A cloud closing removes those of its sandboxes and of its warm pool.
    const own = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 1, sandboxNetwork: 'routed' });
    const left = await Sandbox.create('base', own.connection);
    const leftLink = own.sandboxes.get(left.sandboxId).link!;
    const instanceTables = leftLink.table.replace(/-\d+$/, '-');
    await own.sandboxes.poolSettled();
    expect(nftTables().split(instanceTables).length - 1).toBe(2);
    await own.close();
    expect(nftTables()).not.toContain(instanceTables);
    await waitFor(() => !hasLink(leftLink.name), `${leftLink.name} to go`, LINK_GONE_MS);
  });

  it("removes a crashed cloud's firewall tables and veth pairs at the next start", async () => {
    const script = fileURLToPath(new URL('../fixtures/cloud-process.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, 'routed'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitFor(() => output.includes('\n'), 'the child cloud to report its sandbox', 30_000);
      const { link, table } = JSON.parse(output.split('\n')[0]!) as { link: string; table: string };
      expect(hasLink(link)).toBe(true);
      expect(nftTables()).toContain(`table inet ${table}\n`);
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
      // Its sandbox dies with it (PR_SET_PDEATHSIG), and its network namespace with the veth pair.
      await waitFor(() => !hasLink(link), `${link} to go with the crashed cloud's sandbox`, 10_000);
      // Its table stays until a cloud starts (one started meanwhile by another test file may be the one that removes it).
      const next = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 0 });
      await next.close();
      expect(nftTables()).not.toContain(`table inet ${table}\n`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
