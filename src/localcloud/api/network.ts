import ipaddr from 'ipaddr.js';
import { API_STATUS, LocalCloudError } from '../errors.js';
import { ALL_TRAFFIC, type EgressRules } from '../isolation/index.js';

/** The egress fields of E2B's `SandboxNetworkConfig` and `SandboxNetworkUpdateConfig`. */
export interface NetworkBody {
  readonly allowOut?: readonly string[] | undefined;
  readonly denyOut?: readonly string[] | undefined;
  readonly rules?: unknown;
  readonly egressProxy?: unknown;
}

const SUPPORTED = 'the local cloud filters by IPv4 address and CIDR (such as 8.8.8.8, 10.0.0.0/8, or allTraffic, 0.0.0.0/0)';

/** `entry` as a CIDR of its network (`8.8.8.8` → `8.8.8.8/32`, `10.1.2.3/8` → `10.0.0.0/8`). @throws LocalCloudError 400 naming `field`. */
function cidrOf(entry: string, field: string, allowsDomains: boolean): string {
  const bad = (why: string): LocalCloudError => new LocalCloudError(API_STATUS.badRequest, `${field}: '${entry}' ${why}`);
  if (ipaddr.IPv4.isValidFourPartDecimal(entry)) return `${entry}/32`;
  if (ipaddr.IPv4.isValidCIDRFourPartDecimal(entry)) {
    const [, prefix] = ipaddr.IPv4.parseCIDR(entry);
    return `${ipaddr.IPv4.networkAddressFromCIDR(entry).toString()}/${prefix}`;
  }
  if (ipaddr.IPv6.isValid(entry) || ipaddr.IPv6.isValidCIDR(entry)) {
    throw bad(`is IPv6: a routed local sandbox has IPv4 only (its IPv6 traffic is always refused); ${SUPPORTED}`);
  }
  if (/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/.test(entry) && /[A-Za-z]/.test(entry)) {
    if (!allowsDomains) throw bad(`is a domain name, and domain names are not supported for deny rules (as on E2B): give IPv4 addresses or CIDRs`);
    throw bad(`is a domain name, which E2B matches by SNI and Host header in its egress proxy; the local cloud has no such proxy: ${SUPPORTED}, so give the domain's addresses instead`);
  }
  throw bad(`is not an IPv4 address or CIDR: ${SUPPORTED}`);
}

/**
 * The egress rules of a create's or an update's `network`: every entry of `allowOut` and `denyOut` an
 * IPv4 network; `denyAll` (an update's `allow_internet_access: false`, which E2B treats as denying
 * 0.0.0.0/0) adds allTraffic to `denyOut`.
 * @param where the body's field, for messages (`body.network`, `body`).
 * @throws LocalCloudError 400 for a domain name, an IPv6 or malformed entry, `rules` or `egressProxy`, naming the field and what is supported.
 */
export function egressRulesOf(network: NetworkBody, where: string, denyAll = false): EgressRules {
  if (network.rules !== undefined) {
    throw new LocalCloudError(API_STATUS.badRequest, `${where}.rules: transform rules are not supported by the local cloud (E2B applies them in its egress proxy, which it does not have): leave rules out; ${SUPPORTED} in allowOut and denyOut`);
  }
  if (network.egressProxy !== undefined) {
    throw new LocalCloudError(API_STATUS.badRequest, `${where}.egressProxy: an egress proxy is not supported by the local cloud: leave egressProxy out; ${SUPPORTED} in allowOut and denyOut`);
  }
  const allowOut = (network.allowOut ?? []).map((entry, index) => cidrOf(entry, `${where}.allowOut[${index}]`, true));
  const denyOut = (network.denyOut ?? []).map((entry, index) => cidrOf(entry, `${where}.denyOut[${index}]`, false));
  if (denyAll && !denyOut.includes(ALL_TRAFFIC)) denyOut.push(ALL_TRAFFIC);
  return { allowOut: [...new Set(allowOut)], denyOut: [...new Set(denyOut)] };
}
