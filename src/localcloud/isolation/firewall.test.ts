import { describe, expect, it } from 'vitest';
import { rulesetOf, slotAddresses, tableNameOf } from './firewall.js';

describe('a routed sandbox on its slot', () => {
  it.each([
    [0, '10.213.0.1', '10.213.0.2'],
    [1, '10.213.0.5', '10.213.0.6'],
    [16_383, '10.213.255.253', '10.213.255.254'],
  ])('slot %i: gateway %s, sandbox %s', (slot, gateway, sandbox) => {
    expect(slotAddresses(slot)).toEqual({ gateway, sandbox });
  });

  it('replaces its table in one transaction: replies pass, IPv6 and other sandboxes are refused, then allowed before denied', () => {
    const table = tableNameOf('srv-12-abcdef', 1);
    const lines = rulesetOf(table, 'tsw1', 1, { allowOut: ['1.1.1.1/32'], denyOut: ['0.0.0.0/0'] }).split('\n').map((line) => line.trim());
    expect(lines.slice(0, 3)).toEqual(['add table inet tradeswarm-srv-12-abcdef-1', 'delete table inet tradeswarm-srv-12-abcdef-1', 'table inet tradeswarm-srv-12-abcdef-1 {']);
    const egress = lines.indexOf('chain egress {');
    expect(lines.slice(egress + 1, lines.indexOf('}', egress))).toEqual([
      'ct direction reply accept',
      'meta nfproto ipv6 goto refuse',
      'ip daddr 10.213.0.0/16 ip daddr != 10.213.0.5 goto refuse',
      'ip daddr 1.1.1.1/32 accept',
      'ip daddr 0.0.0.0/0 goto refuse',
    ]);
    // Its traffic to the host itself and through it: both hooks, keyed to the host end.
    expect(lines.filter((line) => line === 'iif "tsw1" jump egress')).toHaveLength(2);
    expect(lines).toContain('type filter hook input priority filter; policy accept;');
    expect(lines).toContain('type filter hook forward priority filter; policy accept;');
    expect(lines).toContain('ip saddr 10.213.0.6 oif != "tsw1" masquerade');
  });

  it('lets the sandbox reach the egress proxy at its gateway before any rule of its own', () => {
    const lines = rulesetOf('t', 'tsw1', 1, { allowOut: [], denyOut: ['0.0.0.0/0'] }, 40123).split('\n').map((line) => line.trim());
    const proxy = lines.indexOf('ip daddr 10.213.0.5 tcp dport 40123 accept');
    expect(proxy).toBeGreaterThan(lines.indexOf('ip daddr 10.213.0.0/16 ip daddr != 10.213.0.5 goto refuse'));
    expect(proxy).toBeLessThan(lines.indexOf('ip daddr 0.0.0.0/0 goto refuse'));
  });
});
