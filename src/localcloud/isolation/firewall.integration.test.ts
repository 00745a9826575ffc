import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { NO_EGRESS_RULES, SandboxLink, probeRoutedNetwork } from './firewall.js';

/**
 * Slots of routed sandboxes' links on this host, with real veth pairs and nftables tables: a slot
 * whose sandbox died is not given out again before its link was destroyed, and a destroy never
 * removes a newer link of the same name. Needs root, ip and nft (as the routed network does).
 */

const missing = probeRoutedNetwork();
const INSTANCE = `srv-${process.pid}-fwtest`;
const namespaces: ChildProcess[] = [];
const links: SandboxLink[] = [];

/** A process in a network namespace of its own, as a sandbox's init is. */
async function namespace(): Promise<ChildProcess> {
  const child = spawn('/usr/bin/unshare', ['--net', 'sleep', '120'], { stdio: 'ignore' });
  namespaces.push(child);
  // unshare execs sleep in the new namespace: wait until the pid's namespace is no longer ours.
  const ours = execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' });
  for (let i = 0; i < 200; i++) {
    const theirs = (() => {
      try {
        return execFileSync('readlink', [`/proc/${child.pid}/ns/net`], { encoding: 'utf8' });
      } catch {
        return ours;
      }
    })();
    if (theirs !== ours) return child;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the namespace process did not start');
}

async function gone(name: string): Promise<void> {
  for (let i = 0; i < 500 && existsSync(`/sys/class/net/${name}`); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(existsSync(`/sys/class/net/${name}`), `${name} removed by the kernel`).toBe(false);
}

afterEach(async () => {
  for (const link of links.splice(0)) await link.destroy();
  for (const child of namespaces.splice(0)) child.kill('SIGKILL');
});

describe.skipIf(missing.length > 0)(`routed sandboxes' links${missing.length > 0 ? ` (skipped: this host lacks ${missing.join(', ')})` : ''}`, () => {
  it("does not give out a dead sandbox's slot before its link was destroyed, and that destroy leaves a newer link of the name alone", async () => {
    const first = await SandboxLink.attach((await namespace()).pid!, INSTANCE, NO_EGRESS_RULES);
    links.push(first);
    // Its sandbox dies: the kernel removes the veth at once, the link's destroy comes later.
    namespaces[0]!.kill('SIGKILL');
    await gone(first.name);
    const second = await SandboxLink.attach((await namespace()).pid!, INSTANCE, NO_EGRESS_RULES);
    links.push(second);
    expect(second.slot).not.toBe(first.slot);

    // Another server's sandbox takes the name meanwhile: the late destroy leaves its link alone.
    execFileSync('ip', ['link', 'add', first.name, 'type', 'veth', 'peer', 'name', `fwt${process.pid % 100_000}`]);
    try {
      await first.destroy();
      expect(existsSync(`/sys/class/net/${first.name}`)).toBe(true);
    } finally {
      execFileSync('ip', ['link', 'del', first.name]);
    }
    // Destroyed, its slot is free again.
    const third = await SandboxLink.attach((await namespace()).pid!, INSTANCE, NO_EGRESS_RULES);
    links.push(third);
    expect(third.slot).toBe(first.slot);
  });
});
