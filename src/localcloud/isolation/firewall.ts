/**
 * A routed sandbox's network, and its egress firewall, both held from the host.
 *
 * The sandbox's network namespace (made by its init, see launcher.ts) is joined to the host by a veth
 * pair: `eth0` inside, `tsw<slot>` on the host. Each slot owns one /30 of {@link SANDBOX_SUBNET}: the
 * host end is its first address (the sandbox's default gateway), the sandbox's `eth0` its second. The
 * host masquerades the sandbox's traffic out of its own interfaces, and filters it in an nftables table
 * of the sandbox's own (`tradeswarm-<server instance>-<slot>`), keyed to the host end's interface
 * index: nothing inside the sandbox can change it, not even its root (it has no CAP_NET_ADMIN, and
 * the table is not in its namespace at all).
 *
 * Slots are host-wide: the kernel refuses a second link of the same name, so two servers never take
 * the same slot or addresses. The veth pair goes with the sandbox's namespace when its last process
 * ends, however the server ends; its table stays until removed, by the sandbox's kill, or by the next
 * server to start after a crash ({@link cleanStaleFirewalls}). A stale table never filters a newer
 * sandbox of the same slot: its rules name the old link's index, which the kernel does not reuse.
 */
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';

/** The addresses routed sandboxes get (one /30 each, 16,384 sandboxes at once on a host). */
export const SANDBOX_SUBNET = '10.213.0.0/16';
const SUBNET_BASE = (10 * 2 ** 24) + (213 * 2 ** 16);
const SLOTS = 16_384;
/** Host ends of the veth pairs are named `tsw<slot>`. */
const LINK_PREFIX = 'tsw';
const TABLE_PREFIX = 'tradeswarm-';
const NFT = '/usr/sbin/nft';
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((path) => existsSync(path)) ?? '/usr/sbin/ip';
const NSENTER = '/usr/bin/nsenter';
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

/** A rule the egress proxy applies to requests for its host (E2B's `SandboxNetworkRule`). */
export interface EgressRule {
  /** Headers set on every request for the host, replacing any the request had. */
  readonly transform?: { readonly headers?: Readonly<Record<string, string>> };
}

/**
 * What a routed sandbox may reach: IPv4 networks in CIDR form, which its firewall enforces. Allowed
 * entries take precedence over denied ones. Host names and per-host rules are enforced by the egress
 * proxy (see egress/proxy.ts), which a sandbox that has either is pointed at.
 */
export interface EgressRules {
  readonly allowOut: readonly string[];
  readonly denyOut: readonly string[];
  /** Host names (`api.example.com`, or `*.example.com` for its subdomains) allowed through the egress proxy: E2B's domain entries of `allowOut`. */
  readonly allowHosts?: readonly string[];
  /** Per host, address or IPv4 network: the rules the egress proxy applies to requests for it, in order (E2B's `network.rules`). */
  readonly rules?: Readonly<Record<string, readonly EgressRule[]>>;
}

/** No rules: everything is reachable (but other sandboxes). */
export const NO_EGRESS_RULES: EgressRules = { allowOut: [], denyOut: [] };

/** E2B's `allTraffic` selector. */
export const ALL_TRAFFIC = '0.0.0.0/0';

/** Whether rules deny everything and allow nothing (no network, no host name), which a sandbox without any network (an empty namespace) enforces as well. */
export function deniesAllTraffic(rules: EgressRules): boolean {
  return rules.allowOut.length === 0 && (rules.allowHosts?.length ?? 0) === 0 && rules.denyOut.includes(ALL_TRAFFIC);
}

function addressOf(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

/** The addresses of a slot: the host end (the sandbox's gateway) and the sandbox's `eth0`. */
export function slotAddresses(slot: number): { readonly gateway: string; readonly sandbox: string } {
  const base = SUBNET_BASE + slot * 4;
  return { gateway: addressOf(base + 1), sandbox: addressOf(base + 2) };
}

/** The nftables table of one sandbox's slot, named after the server instance that owns it. */
export function tableNameOf(instance: string, slot: number): string {
  return `${TABLE_PREFIX}${instance}-${slot}`;
}

/**
 * The nftables script that (re)places a sandbox's table in one transaction: its traffic, arriving on
 * the host end `link`, to the host itself (input) or anywhere else (forward), goes through `egress`;
 * its source address is masqueraded on the way out. In `egress`: replies of connections made to the
 * sandbox pass; IPv6 is refused (a routed sandbox has IPv4 only); other sandboxes are never reachable;
 * then the allowed networks pass, the denied ones are refused (a TCP reset, or an ICMP
 * administratively-prohibited, so that a client fails at once rather than time out), and the rest
 * passes. Every packet is checked, so rules replaced by `updateNetwork` apply to open connections too.
 * With `proxyPort`, the egress proxy there on the host (the sandbox's gateway) is always reachable: it
 * judges by the same rules, plus host names, what it reaches for the sandbox.
 */
export function rulesetOf(table: string, link: string, slot: number, rules: EgressRules, proxyPort?: number): string {
  const { gateway, sandbox } = slotAddresses(slot);
  return [
    `add table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain refuse {',
    '    meta l4proto tcp reject with tcp reset',
    '    reject with icmpx type admin-prohibited',
    '  }',
    '  chain egress {',
    '    ct direction reply accept',
    '    meta nfproto ipv6 goto refuse',
    `    ip daddr ${SANDBOX_SUBNET} ip daddr != ${gateway} goto refuse`,
    ...(proxyPort === undefined ? [] : [`    ip daddr ${gateway} tcp dport ${proxyPort} accept`]),
    ...rules.allowOut.map((network) => `    ip daddr ${network} accept`),
    ...rules.denyOut.map((network) => `    ip daddr ${network} goto refuse`),
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iif "${link}" jump egress`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iif "${link}" jump egress`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${sandbox} oif != "${link}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

interface Run {
  readonly code: number;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 10_000 }, (error, _stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stderr: String(stderr).trim() || (error ? error.message : '') });
    });
    // A tool that fails early, or reads no input, closes its stdin first: its exit says what went wrong.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

async function must(what: string, file: string, args: readonly string[], input?: string): Promise<void> {
  const result = await run(file, args, input);
  if (result.code !== 0) throw new Error(`${what}: ${result.stderr || `exit code ${result.code}`}`);
}

/** The interface index of link `name`, or undefined when there is none. */
function indexOf(name: string): number | undefined {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

function linksNow(): Set<string> {
  try {
    return new Set(readdirSync('/sys/class/net'));
  } catch {
    return new Set();
  }
}

let forwardingOn = false;
/**
 * Slots of this process's links, from the moment one is tried until its link is destroyed. Sandboxes
 * started together try different names rather than race for one; and a slot is not tried again while
 * its last link may still be being removed: the kernel removes a veth when its sandbox's namespace
 * dies, before that sandbox's destroy runs, and the destroy must not find a new link of the same name
 * and table and remove them.
 */
const held = new Set<number>();

/** Routes IPv4 between interfaces (as Docker does), which a routed sandbox's traffic to the internet needs. */
function enableForwarding(): void {
  if (forwardingOn) return;
  if (readFileSync(IP_FORWARD, 'utf8').trim() !== '1') writeFileSync(IP_FORWARD, '1\n');
  forwardingOn = true;
}

/** The host side of one routed sandbox's network: its veth pair, addresses and firewall table. */
export class SandboxLink {
  private constructor(
    /** The host end's name, `tsw<slot>`. */
    readonly name: string,
    readonly slot: number,
    readonly table: string,
    /** The host end's interface index: a link of the same name made later has another. */
    readonly ifindex: number | undefined,
    /** The egress proxy's port on the host, which the sandbox may always reach at its gateway; undefined without one. */
    readonly proxyPort: number | undefined,
  ) {}

  /** The sandbox's gateway (the host end's address): the host as the sandbox reaches it. */
  get gateway(): string {
    return slotAddresses(this.slot).gateway;
  }

  /** The sandbox's own address on its `eth0`. */
  get address(): string {
    return slotAddresses(this.slot).sandbox;
  }

  /**
   * Joins the network namespace of the process `initPid` to the host on a free slot and applies `rules`
   * (with the egress proxy at `proxyPort` reachable, when there is one). On failure removes whatever it made.
   * @throws when the host refuses (its tools' error output is in the message).
   */
  static async attach(initPid: number, instance: string, rules: EgressRules, proxyPort?: number): Promise<SandboxLink> {
    enableForwarding();
    const taken = linksNow();
    for (let attempt = 0, slot = 0; attempt < 64 && slot < SLOTS; slot++) {
      const name = `${LINK_PREFIX}${slot}`;
      if (taken.has(name) || held.has(slot)) continue;
      attempt++;
      const { gateway, sandbox } = slotAddresses(slot);
      held.add(slot);
      const made = await run(IP, ['link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(initPid)]);
      if (made.code !== 0) held.delete(slot);
      // Taken meanwhile by another server's sandbox: try the next slot.
      if (made.code !== 0 && /File exists/.test(made.stderr)) continue;
      if (made.code !== 0) throw new Error(`could not make the sandbox's veth pair ${name}: ${made.stderr}`);
      const link = new SandboxLink(name, slot, tableNameOf(instance, slot), indexOf(name), proxyPort);
      try {
        // The alias names the server instance, so that the next server after a crash knows whose it was.
        await must(`could not set up the host end ${name}`, IP, ['-batch', '-'], [`link set ${name} alias ${instance}`, `addr add ${gateway}/30 dev ${name}`, `link set ${name} up`].join('\n'));
        await must("could not set up the sandbox's eth0", NSENTER, [`--net=/proc/${initPid}/ns/net`, '--', IP, '-batch', '-'], [`addr add ${sandbox}/30 dev eth0`, 'link set eth0 up', `route add default via ${gateway}`].join('\n'));
        await link.apply(rules);
        return link;
      } catch (error) {
        await link.destroy();
        throw error;
      }
    }
    throw new Error(`no free veth name (${LINK_PREFIX}0 to ${LINK_PREFIX}${SLOTS - 1}) after 64 tries`);
  }

  /** Replaces the sandbox's egress rules, in one nftables transaction. */
  async apply(rules: EgressRules): Promise<void> {
    await must(`could not apply the sandbox's egress rules (nftables table ${this.table})`, NFT, ['-f', '-'], rulesetOf(this.table, this.name, this.slot, rules, this.proxyPort));
  }

  /**
   * Removes the table and the veth pair (gone already when the sandbox's namespace went; a link of
   * the same name that is not this one is left alone), then frees the slot. Never throws.
   */
  async destroy(): Promise<void> {
    try {
      await run(NFT, ['delete', 'table', 'inet', this.table]);
      if (this.ifindex !== undefined && indexOf(this.name) === this.ifindex) await run(IP, ['link', 'del', this.name]);
    } finally {
      held.delete(this.slot);
    }
  }
}

function serverIsGone(instance: string): boolean {
  const pid = /^srv-(\d+)-/.exec(instance)?.[1];
  if (pid === undefined) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes the firewall tables and veth links of servers that are gone (a crashed earlier run), as
 * cleanStaleCgroups does for cgroups: by the pid in the server instance's name.
 * @returns how many tables and links were removed.
 */
export async function cleanStaleFirewalls(): Promise<number> {
  if (!existsSync(NFT)) return 0;
  let cleaned = 0;
  const tables = await new Promise<string>((resolve) => execFile(NFT, ['list', 'tables'], (error, stdout) => resolve(error ? '' : String(stdout))));
  for (const match of tables.matchAll(/^table inet (tradeswarm-(srv-\d+-[A-Za-z0-9]+)-\d+)$/gm)) {
    if (!serverIsGone(match[2]!)) continue;
    if ((await run(NFT, ['delete', 'table', 'inet', match[1]!])).code === 0) cleaned++;
  }
  for (const name of linksNow()) {
    const alias = name.startsWith(LINK_PREFIX) ? aliasOf(name) : undefined;
    if (alias !== undefined && /^srv-\d+-/.test(alias) && serverIsGone(alias) && (await run(IP, ['link', 'del', name])).code === 0) cleaned++;
  }
  return cleaned;
}

/** A link's alias (the server instance that made it, for a sandbox's veth), or undefined when it is gone. */
function aliasOf(name: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/ifalias`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * What this host lacks to give a sandbox a routed network with an egress firewall, found by trying
 * (a veth pair, an nftables table, IPv4 forwarding); empty when it has everything.
 */
export function probeRoutedNetwork(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) return ['root'];
  if (!existsSync(NFT)) missing.push(`nft (${NFT}: apt-get install nftables)`);
  if (!existsSync(IP)) missing.push('ip (iproute2)');
  if (missing.length > 0) return missing;
  const probe = `tswprobe${process.pid % 100_000}`;
  // One run of each tool: the server's start waits for them.
  const veth = spawnSync(IP, ['-batch', '-'], { input: `link add ${probe} type veth peer name ${probe}p\nlink del ${probe}\n`, encoding: 'utf8', timeout: 5000 });
  if (veth.status !== 0) {
    spawnSync(IP, ['link', 'del', probe], { stdio: 'ignore', timeout: 5000 });
    missing.push(`veth pairs (${(veth.stderr || 'ip link add failed').trim()})`);
  }
  const table = `${TABLE_PREFIX}probe-${process.pid}`;
  const nft = spawnSync(NFT, ['-f', '-'], { input: `table inet ${table} {\n  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }\n}\ndelete table inet ${table}\n`, encoding: 'utf8', timeout: 5000 });
  if (nft.status !== 0) missing.push(`nftables filter and NAT tables (${(nft.stderr || 'nft failed').trim()})`);
  try {
    // Only checked: forwarding is turned on when the first routed sandbox starts.
    if (readFileSync(IP_FORWARD, 'utf8').trim() !== '1') accessSync(IP_FORWARD, constants.W_OK);
  } catch {
    missing.push(`IPv4 forwarding (${IP_FORWARD} is not writable)`);
  }
  return missing;
}
