import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { MissingApiKeyError } from '../sandbox/index.js';
import { parseSandboxFlag } from './sandbox.js';

describe('--sandbox', () => {
  it.each([
    { value: 'local', env: {}, expected: { kind: 'local' } },
    { value: 'e2b', env: { E2B_API_KEY: 'e2b_123' }, expected: { kind: 'e2b', connection: { apiKey: 'e2b_123' } } },
  ])('$value gives $expected', ({ value, env, expected }) => {
    expect(parseSandboxFlag(value, env)).toEqual(expected);
  });

  it('refuses another value naming the flag, and e2b without E2B_API_KEY with the one missing-key error', () => {
    expect(() => parseSandboxFlag('cloud', {})).toThrow(new InvalidInputError('--sandbox', 'must be local or e2b, got "cloud"'));
    expect(() => parseSandboxFlag('e2b', {})).toThrow(MissingApiKeyError);
  });
});
