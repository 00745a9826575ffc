// What the egress proxy lets a sandbox reach, and what it adds to its requests: E2B's allowOut and
// denyOut (host names by the name the client asked for, addresses by where the proxy would connect)
// and its per-host rules.
import ipaddr from 'ipaddr.js';
import { SANDBOX_SUBNET, type EgressRules } from '../isolation/index.js';

/** A host name as compared: lower case, without a trailing dot. */
function canonical(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** Whether `pattern` (`api.example.com`, or `*.example.com` for any of its subdomains) names `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  const name = canonical(host);
  const wanted = canonical(pattern);
  if (wanted.startsWith('*.')) return name.endsWith(wanted.slice(1)) && name.length > wanted.length - 1;
  return name === wanted;
}

/** Whether `network` (an address, or a network in CIDR form) holds the IPv4 `address`. */
function holds(network: string, address: string): boolean {
  if (!ipaddr.IPv4.isValidFourPartDecimal(address)) return false;
  const parsed = ipaddr.IPv4.parse(address);
  if (ipaddr.IPv4.isValidFourPartDecimal(network)) return network === address;
  if (!ipaddr.IPv4.isValidCIDR(network)) return false;
  return parsed.match(ipaddr.IPv4.parseCIDR(network));
}

/** Whether a rules key (a host name pattern, an address or a network) is for `host`, reached at `address`. */
function keyFor(key: string, host: string, address: string): boolean {
  if (ipaddr.IPv4.isValid(key) || ipaddr.IPv4.isValidCIDR(key)) return holds(key, address) || holds(key, host);
  return hostMatches(key, host);
}

/** Whether the proxy must give sandboxes with these rules its own address to reach. */
export function needsProxy(rules: EgressRules): boolean {
  return (rules.allowHosts?.length ?? 0) > 0 || Object.keys(rules.rules ?? {}).length > 0;
}

/** The proxy's verdict on a request: allowed, or refused and why (for the answer the client gets). */
export type EgressVerdict = { readonly allowed: true } | { readonly allowed: false; readonly why: string };

/**
 * Whether a sandbox with `rules` may reach `host` (the name it asked for) at `address` (where the proxy
 * would connect): a host name it allows; else, as its firewall judges an address, never another
 * sandbox, an allowed network, a denied one refused, and the rest allowed.
 */
export function verdictOf(rules: EgressRules, host: string, address: string): EgressVerdict {
  if (rules.allowHosts?.some((pattern) => hostMatches(pattern, host))) return { allowed: true };
  if (holds(SANDBOX_SUBNET, address)) return { allowed: false, why: `${address} is another sandbox's address, which no sandbox reaches directly` };
  if (rules.allowOut.some((network) => holds(network, address))) return { allowed: true };
  const denied = rules.denyOut.find((network) => holds(network, address));
  if (denied === undefined) return { allowed: true };
  return { allowed: false, why: `${host === address ? address : `${host} (${address})`} is denied by the sandbox's denyOut ${denied}, and allowed by none of its allowOut entries` };
}

/** The headers the sandbox's rules set on a request for `host` at `address`: every matching rule's, in order, later ones winning. */
export function headersFor(rules: EgressRules, host: string, address: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, list] of Object.entries(rules.rules ?? {})) {
    if (!keyFor(key, host, address)) continue;
    for (const rule of list) Object.assign(headers, rule.transform?.headers ?? {});
  }
  return headers;
}
