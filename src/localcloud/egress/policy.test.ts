import { describe, expect, it } from 'vitest';
import type { EgressRules } from '../isolation/index.js';
import { headersFor, hostMatches, verdictOf } from './policy.js';

const NONE: EgressRules = { allowOut: [], denyOut: [] };

describe('egress policy', () => {
  it.each([
    ['api.example.com', 'api.example.com', true],
    ['api.example.com', 'API.Example.com.', true],
    ['api.example.com', 'x.api.example.com', false],
    ['*.example.com', 'api.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'badexample.com', false],
  ])('%s names %s: %s', (pattern, host, expected) => {
    expect(hostMatches(pattern, host)).toBe(expected);
  });

  it('allows a named host, then judges the address as the firewall does', () => {
    const rules: EgressRules = { allowOut: ['8.8.8.0/24'], denyOut: ['0.0.0.0/0'], allowHosts: ['*.example.com'] };
    expect(verdictOf(rules, 'api.example.com', '93.184.215.14')).toEqual({ allowed: true });
    expect(verdictOf(rules, 'dns.google', '8.8.8.8')).toEqual({ allowed: true });
    expect(verdictOf(rules, 'other.org', '1.2.3.4')).toEqual({ allowed: false, why: 'other.org (1.2.3.4) is denied by the sandbox\'s denyOut 0.0.0.0/0, and allowed by none of its allowOut entries' });
    expect(verdictOf(NONE, 'x.org', '1.2.3.4')).toEqual({ allowed: true });
    expect(verdictOf(NONE, '10.213.0.6', '10.213.0.6')).toEqual({ allowed: false, why: "10.213.0.6 is another sandbox's address, which no sandbox reaches directly" });
  });

  it('sets the headers of every rule for the host, its address or its network, later ones winning', () => {
    const rules: EgressRules = {
      ...NONE,
      rules: {
        'api.example.com': [{ transform: { headers: { A: '1', B: '1' } } }, { transform: { headers: { B: '2' } } }],
        '93.184.0.0/16': [{ transform: { headers: { C: '3' } } }],
        'other.org': [{ transform: { headers: { D: '4' } } }],
        'empty.org': [{}],
      },
    };
    expect(headersFor(rules, 'api.example.com', '93.184.215.14')).toEqual({ A: '1', B: '2', C: '3' });
    expect(headersFor(rules, 'empty.org', '1.1.1.1')).toEqual({});
  });
});
