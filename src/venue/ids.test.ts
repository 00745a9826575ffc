import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { type ClientOrderIdParts, clientOrderId } from './index.js';

const parts: ClientOrderIdParts = { swarm: 'demo', role: 'executor', barIndex: 42, symbol: 'AAA', intent: 'enter-long' };

describe('clientOrderId', () => {
  it('is readable and a pure function of its parts', () => {
    const id = clientOrderId(parts);
    expect(id).toMatch(/^demo:executor:42:AAA:enter-long:[0-9a-f]{12}$/);
    expect(clientOrderId({ ...parts })).toBe(id);
  });

  it.each([
    ['swarm', { swarm: 'demo2' }],
    ['role', { role: 'risk' }],
    ['barIndex', { barIndex: 43 }],
    ['symbol', { symbol: 'BBB' }],
    ['intent', { intent: 'exit' }],
  ])('changes when %s changes', (_field, change) => {
    expect(clientOrderId({ ...parts, ...change })).not.toBe(clientOrderId(parts));
  });

  it('keeps ids distinct when cleaning makes parts look alike', () => {
    const a = clientOrderId({ ...parts, symbol: 'BRK/B' });
    const b = clientOrderId({ ...parts, symbol: 'BRK B' });
    expect(a.split(':').slice(0, 5)).toEqual(b.split(':').slice(0, 5));
    expect(a).not.toBe(b);
    expect(clientOrderId({ ...parts, role: 'a:b', intent: 'c' })).not.toBe(clientOrderId({ ...parts, role: 'a', intent: 'b:c' }));
  });

  it('cuts long parts to 24 characters', () => {
    const id = clientOrderId({ ...parts, swarm: 'x'.repeat(100) });
    expect(id.split(':')[0]).toBe('x'.repeat(24));
  });

  it.each([
    ['swarm', { swarm: '' }],
    ['role', { role: ' ' }],
    ['symbol', { symbol: '' }],
    ['intent', { intent: '' }],
    ['barIndex', { barIndex: -1 }],
    ['barIndex', { barIndex: 1.5 }],
  ])('names the bad part: %s', (field, change) => {
    expect(() => clientOrderId({ ...parts, ...change })).toThrow(InvalidInputError);
    try {
      clientOrderId({ ...parts, ...change });
    } catch (error) {
      expect((error as InvalidInputError).field).toBe(field);
    }
  });
});
