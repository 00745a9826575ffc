import { describe, expect, it } from 'vitest';
import { closedPort } from '../../test/fixtures/servers.js';
import { errorChain } from './errors.js';

describe('errorChain', () => {
  it("tells a fetch failure's reason, which is in its cause", async () => {
    const error = await fetch(`http://127.0.0.1:${await closedPort()}/`).catch((caught: unknown) => caught);
    expect(errorChain(error)).toMatch(/^fetch failed: .*ECONNREFUSED/);
  });

  it('tells each message once, follows at most five causes, and names what has no message', () => {
    const inner = Object.assign(new Error(''), { code: 'EPIPE' });
    expect(errorChain(new Error('outer', { cause: new Error('middle', { cause: inner }) }))).toBe('outer: middle: EPIPE');
    expect(errorChain(new Error('could not write: disk full', { cause: new Error('disk full') }))).toBe('could not write: disk full');
    expect(errorChain(new AggregateError([new Error(''), new Error('connect ECONNREFUSED ::1:9')], ''))).toBe('connect ECONNREFUSED ::1:9');
    let deep: Error = new Error('level 9');
    for (let level = 8; level >= 0; level--) deep = new Error(`level ${level}`, { cause: deep });
    expect(errorChain(deep)).toBe('level 0: level 1: level 2: level 3: level 4');
    expect(errorChain('plain text')).toBe('plain text');
  });
});
