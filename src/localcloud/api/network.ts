import ipaddr from 'ipaddr.js';
import { API_STATUS, LocalCloudError } from '../errors.js';
import { ALL_TRAFFIC, type EgressRule, type EgressRules } from '../isolation/index.js';

/** The egress fields of E2B's `SandboxNetworkConfig` and `SandboxNetworkUpdateConfig`. */
export interface NetworkBody {
  readonly allowOut?: readonly string[] | undefined;
  readonly denyOut?: readonly string[] | undefined;
  readonly rules?: unknown;
  readonly egressProxy?: unknown;
}

const SUPPORTED = 'the local cloud filters IPv4 addresses and CIDRs (such as 8.8.8.8, 10.0.0.0/8, or allTraffic, 0.0.0.0/0) in its firewall, and host names (api.example.com, *.example.com) of HTTP and HTTPS requests in its egress proxy';
const HOST_NAME = /^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/;
/** An HTTP header's name (RFC 9110 §5.1: a token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function isHostName(entry: string): boolean {
  return HOST_NAME.test(entry) && /[A-Za-z]/.test(entry) && entry.length <= 253;
}

/** An IPv4 `entry` as a CIDR of its network (`8.8.8.8` → `8.8.8.8/32`, `10.1.2.3/8` → `10.0.0.0/8`), or undefined. */
function ipv4NetworkOf(entry: string): string | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(entry)) return `${entry}/32`;
  if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(entry)) return undefined;
  const [, prefix] = ipaddr.IPv4.parseCIDR(entry);
  return `${ipaddr.IPv4.networkAddressFromCIDR(entry).toString()}/${prefix}`;
}

/** What an entry of allowOut or denyOut is: a network, or (allowOut only) a host name. @throws LocalCloudError 400 naming `field`. */
function entryOf(entry: string, field: string, allowsHosts: boolean): { readonly network: string } | { readonly host: string } {
  const bad = (why: string): LocalCloudError => new LocalCloudError(API_STATUS.badRequest, `${field}: '${entry}' ${why}`);
  const network = ipv4NetworkOf(entry);
  if (network !== undefined) return { network };
  if (ipaddr.IPv6.isValid(entry) || ipaddr.IPv6.isValidCIDR(entry)) {
    throw bad(`is IPv6: a routed local sandbox has IPv4 only (its IPv6 traffic is always refused); ${SUPPORTED}`);
  }
  if (isHostName(entry)) {
    if (!allowsHosts) throw bad(`is a domain name, and domain names are not supported for deny rules (as on E2B): give IPv4 addresses or CIDRs`);
    return { host: entry.toLowerCase().replace(/\.$/, '') };
  }
  throw bad(`is not an IPv4 address or CIDR, nor a host name: ${SUPPORTED}`);
}

/**
 * E2B's `network.rules`: per host name, IPv4 address or network, a list of rules, each with an optional
 * `transform` of headers to set (an empty or null transform is a rule that sets nothing).
 * @throws LocalCloudError 400 naming the field and what is allowed.
 */
function rulesOf(rules: unknown, field: string): Record<string, EgressRule[]> {
  const bad = (where: string, why: string): LocalCloudError => new LocalCloudError(API_STATUS.badRequest, `${where}: ${why}`);
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject(rules)) throw bad(field, 'must be an object of host name (or IPv4 address or CIDR) to a list of rules, e.g. {"api.example.com": [{"transform": {"headers": {"Authorization": "Bearer …"}}}]}');
  const out: Record<string, EgressRule[]> = {};
  for (const [key, list] of Object.entries(rules)) {
    const where = `${field}[${JSON.stringify(key)}]`;
    if (ipv4NetworkOf(key) === undefined && !isHostName(key)) throw bad(where, `'${key}' is not a host name, an IPv4 address or an IPv4 CIDR`);
    if (!Array.isArray(list)) throw bad(where, 'must be a list of rules, e.g. [{"transform": {"headers": {"X-Name": "value"}}}]');
    out[key.toLowerCase()] = list.map((rule: unknown, index) => {
      const at = `${where}[${index}]`;
      if (!isObject(rule)) throw bad(at, 'must be an object: {"transform": {"headers": {...}}}');
      const { transform, ...rest } = rule;
      const unknown = Object.keys(rest)[0];
      if (unknown !== undefined) throw bad(`${at}.${unknown}`, 'is not a rule field: a rule has a transform only');
      if (transform === undefined || transform === null) return {};
      if (!isObject(transform)) throw bad(`${at}.transform`, 'must be an object: {"headers": {...}}');
      const { headers, ...others } = transform;
      const other = Object.keys(others)[0];
      if (other !== undefined) throw bad(`${at}.transform.${other}`, 'is not supported: a transform sets headers only');
      if (headers === undefined || headers === null) return { transform: {} };
      if (!isObject(headers)) throw bad(`${at}.transform.headers`, 'must be an object of header name to value');
      for (const [name, value] of Object.entries(headers)) {
        if (!HEADER_NAME.test(name)) throw bad(`${at}.transform.headers`, `'${name}' is not a header name (letters, digits and !#$%&'*+.^_\`|~-)`);
        if (typeof value !== 'string' || /[\r\n\0]/.test(value)) throw bad(`${at}.transform.headers[${JSON.stringify(name)}]`, 'must be a string without line breaks');
      }
      return { transform: { headers: headers as Record<string, string> } };
    });
  }
  return out;
}

/**
 * The egress rules of a create's or an update's `network`: the IPv4 networks of `allowOut` and
 * `denyOut`, the host names of `allowOut`, and `rules`; `denyAll` (an update's
 * `allow_internet_access: false`, which E2B treats as denying 0.0.0.0/0) adds allTraffic to `denyOut`.
 * @param where the body's field, for messages (`body.network`, `body`).
 * @throws LocalCloudError 400 for a domain name in denyOut, an IPv6 or malformed entry, a malformed rule, or `egressProxy`, naming the field and what is supported.
 */
export function egressRulesOf(network: NetworkBody, where: string, denyAll = false): EgressRules {
  if (network.egressProxy !== undefined) {
    throw new LocalCloudError(API_STATUS.badRequest, `${where}.egressProxy: an upstream SOCKS5 proxy for a sandbox's traffic is not supported by the local cloud: leave egressProxy out; ${SUPPORTED}`);
  }
  const allowed = (network.allowOut ?? []).map((entry, index) => entryOf(entry, `${where}.allowOut[${index}]`, true));
  const denyOut = (network.denyOut ?? []).map((entry, index) => (entryOf(entry, `${where}.denyOut[${index}]`, false) as { network: string }).network);
  if (denyAll && !denyOut.includes(ALL_TRAFFIC)) denyOut.push(ALL_TRAFFIC);
  const allowOut = allowed.flatMap((entry) => ('network' in entry ? [entry.network] : []));
  const allowHosts = allowed.flatMap((entry) => ('host' in entry ? [entry.host] : []));
  const rules = network.rules === undefined ? undefined : rulesOf(network.rules, `${where}.rules`);
  return {
    allowOut: [...new Set(allowOut)],
    denyOut: [...new Set(denyOut)],
    ...(allowHosts.length > 0 ? { allowHosts: [...new Set(allowHosts)] } : {}),
    ...(rules !== undefined && Object.keys(rules).length > 0 ? { rules } : {}),
  };
}
