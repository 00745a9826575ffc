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
    ['host names in allowOut go to the egress proxy', { allowOut: ['8.8.8.8', 'API.example.com.', '*.example.org', 'api.example.com'], denyOut: ['0.0.0.0/0'] }, false, { allowOut: ['8.8.8.8/32'], denyOut: ['0.0.0.0/0'], allowHosts: ['api.example.com', '*.example.org'] }],
    [
      'rules, with empty and null transforms',
      { rules: { 'Api.example.com': [{ transform: { headers: { Authorization: 'Bearer x' } } }, {}, { transform: null }], '10.0.0.0/8': [{ transform: { headers: null } }], 'none.example.com': [] } },
      false,
      { allowOut: [], denyOut: [], rules: { 'api.example.com': [{ transform: { headers: { Authorization: 'Bearer x' } } }, {}, {}], '10.0.0.0/8': [{ transform: {} }], 'none.example.com': [] } },
    ],
    ['no rules at all', { rules: {} }, false, { allowOut: [], denyOut: [] }],
  ])('%s', (_name, body, denyAll, expected) => {
    expect(egressRulesOf(body, 'body.network', denyAll)).toEqual(expected);
  });

  it.each([
    [{ allowOut: ['8.8.8.8', 'exa mple.com'] }, /^body\.network\.allowOut\[1\]: 'exa mple\.com' is not an IPv4 address or CIDR, nor a host name: the local cloud filters IPv4 addresses and CIDRs/],
    [{ denyOut: ['example.com'] }, "body.network.denyOut[0]: 'example.com' is a domain name, and domain names are not supported for deny rules (as on E2B): give IPv4 addresses or CIDRs"],
    [{ denyOut: ['::1'] }, /^body\.network\.denyOut\[0\]: '::1' is IPv6: a routed local sandbox has IPv4 only/],
    [{ denyOut: ['10.0.0.0/33'] }, /^body\.network\.denyOut\[0\]: '10\.0\.0\.0\/33' is not an IPv4 address or CIDR/],
    [{ denyOut: ['010.1.1.1'] }, /^body\.network\.denyOut\[0\]: '010\.1\.1\.1' is not an IPv4 address or CIDR/],
    [{ rules: [] }, /^body\.network\.rules: must be an object of host name \(or IPv4 address or CIDR\) to a list of rules/],
    [{ rules: { 'a b': [] } }, 'body.network.rules["a b"]: \'a b\' is not a host name, an IPv4 address or an IPv4 CIDR'],
    [{ rules: { 'a.com': {} } }, /^body\.network\.rules\["a\.com"\]: must be a list of rules/],
    [{ rules: { 'a.com': [{ drop: true }] } }, 'body.network.rules["a.com"][0].drop: is not a rule field: a rule has a transform only'],
    [{ rules: { 'a.com': [{ transform: { body: 'x' } }] } }, 'body.network.rules["a.com"][0].transform.body: is not supported: a transform sets headers only'],
    [{ rules: { 'a.com': [{ transform: { headers: { 'Bad Name': 'x' } } }] } }, /^body\.network\.rules\["a\.com"\]\[0\]\.transform\.headers: 'Bad Name' is not a header name/],
    [{ rules: { 'a.com': [{ transform: { headers: { 'X-Ok': 'a\r\nX-Injected: 1' } } }] } }, 'body.network.rules["a.com"][0].transform.headers["X-Ok"]: must be a string without line breaks'],
    [{ rules: { 'a.com': [{ transform: { headers: { 'X-Ok': 5 } } }] } }, 'body.network.rules["a.com"][0].transform.headers["X-Ok"]: must be a string without line breaks'],
    [{ egressProxy: { address: 'proxy:1080' } }, /^body\.network\.egressProxy: an upstream SOCKS5 proxy for a sandbox's traffic is not supported by the local cloud/],
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
