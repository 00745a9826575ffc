import { describe, expect, it } from 'vitest';
import { LocalCloudError } from '../errors.js';
import { egressRulesOf } from './network.js';

describe('egressRulesOf', () => {
  it.each([
    ['bare addresses become /32s', { allowOut: ['8.8.8.8'], denyOut: ['1.1.1.1'] }, false, { allowOut: ['8.8.8.8/32'], denyOut: ['1.1.1.1/32'] }],
    ['a CIDR with host bits is kept as its network', { denyOut: ['10.1.2.3/8', '192.168.1.77/30'] }, false, { allowOut: [], denyOut: ['10.0.0.0/8', '192.168.1.76/30'] }],
    ['allTraffic and duplicates', { denyOut: ['0.0.0.0/0', '0.0.0.0/0'], allowOut: ['1.1.1.1', '1.1.1.1/32'] }, false, { allowOut: ['1.1.1.1/32'], denyOut: ['0.0.0.0/0'] }],
    ['nothing', {}, false, { allowOut: [], denyOut: [] }],
    ['allow_internet_access: false adds allTraffic to denyOut', { allowOut: ['8.8.8.8'] }, true, { allowOut: ['8.8.8.8/32'], denyOut: ['0.0.0.0/0'] }],
  ])('%s', (_name, body, denyAll, expected) => {
    expect(egressRulesOf(body, 'body.network', denyAll)).toEqual(expected);
  });

  it.each([
    [{ allowOut: ['8.8.8.8', 'example.com'] }, "body.network.allowOut[1]: 'example.com' is a domain name, which E2B matches by SNI and Host header in its egress proxy; the local cloud has no such proxy: the local cloud filters by IPv4 address and CIDR (such as 8.8.8.8, 10.0.0.0/8, or allTraffic, 0.0.0.0/0), so give the domain's addresses instead"],
    [{ allowOut: ['*.example.com'] }, /^body\.network\.allowOut\[0\]: '\*\.example\.com' is a domain name/],
    [{ denyOut: ['example.com'] }, "body.network.denyOut[0]: 'example.com' is a domain name, and domain names are not supported for deny rules (as on E2B): give IPv4 addresses or CIDRs"],
    [{ denyOut: ['::1'] }, /^body\.network\.denyOut\[0\]: '::1' is IPv6: a routed local sandbox has IPv4 only/],
    [{ denyOut: ['10.0.0.0/33'] }, /^body\.network\.denyOut\[0\]: '10\.0\.0\.0\/33' is not an IPv4 address or CIDR/],
    [{ denyOut: ['010.1.1.1'] }, /^body\.network\.denyOut\[0\]: '010\.1\.1\.1' is not an IPv4 address or CIDR/],
    [{ rules: {} }, /^body\.network\.rules: transform rules are not supported by the local cloud/],
    [{ egressProxy: { address: 'proxy:1080' } }, /^body\.network\.egressProxy: an egress proxy is not supported by the local cloud/],
  ])('refuses %j with a 400 naming the field', (body, message) => {
    let error: unknown;
    try {
      egressRulesOf(body, 'body.network');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(LocalCloudError);
    expect((error as LocalCloudError).status).toBe(400);
    if (typeof message === 'string') expect((error as Error).message).toBe(message);
    else expect((error as Error).message).toMatch(message);
  });
});
