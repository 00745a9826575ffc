import { describe, expect, it } from 'vitest';
import { AuthenticationError, CommandExitError, FileNotFoundError, InvalidArgumentError, NotFoundError, RateLimitError, SandboxError, SandboxNotFoundError, TimeoutError } from 'e2b';
import { isCommandExitError, providerFailureOf, type ProviderFailure } from './failures.js';

describe('providerFailureOf', () => {
  it.each([
    ['a 429', new RateLimitError('429: slow down'), 'rate-limited'],
    ['a timeout, or a sandbox gone mid-request', new TimeoutError('gone'), 'timeout'],
    ['a sandbox that no longer exists', new SandboxNotFoundError('sandbox x not found'), 'not-found'],
    ['a file that does not exist', new FileNotFoundError('no /x'), 'not-found'],
    ['anything else not found', new NotFoundError('context c'), 'not-found'],
    ['a reset connection', Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }), 'unreachable'],
    ['a refused connection (code on the error)', Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }), 'unreachable'],
    ['an answer cut off', new TypeError('terminated'), 'unreachable'],
    ['a 503', new SandboxError('503 Service Unavailable'), 'server-error'],
    ['a 400', new SandboxError('400 Bad Request'), undefined],
    ['wrong credentials', new AuthenticationError('bad key'), undefined],
    ['an invalid argument', new InvalidArgumentError('bad'), undefined],
    ['a plain error', new Error('boom'), undefined],
    ['not an error', 'boom', undefined],
  ] satisfies Array<[string, unknown, ProviderFailure | undefined]>)('%s → %s', (_name, error, expected) => {
    expect(providerFailureOf(error)).toBe(expected);
  });
});

describe('isCommandExitError', () => {
  it('tells the SDK’s CommandExitError by name, so another copy of the SDK counts too', () => {
    const exit = new CommandExitError({ exitCode: 3, stdout: 'out', stderr: 'err', error: undefined });
    expect(isCommandExitError(exit)).toBe(true);
    expect(isCommandExitError(Object.assign(new Error('exit 1'), { name: 'CommandExitError', exitCode: 1, stdout: '', stderr: '' }))).toBe(true);
    expect(isCommandExitError(Object.assign(new Error('x'), { name: 'CommandExitError' }))).toBe(false);
    expect(isCommandExitError(new SandboxError('x'))).toBe(false);
  });
});
