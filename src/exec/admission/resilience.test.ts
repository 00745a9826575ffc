import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthenticationError, InvalidArgumentError, NotFoundError, RateLimitError, SandboxError, TimeoutError } from '@e2b/code-interpreter';
import { InvalidInputError } from '../../core/index.js';
import { ProviderUnavailableError } from '../errors.js';
import { SandboxResilience, compileResilienceOptions, isTransient } from './resilience.js';

// cockatiel reads Date.now() and sets real timers; fake timers are the manual clock here.
beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** An operation that fails with the given errors in turn, then returns 'ok'. */
function scripted(...failures: Error[]): { operation: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    operation: () => {
      const failure = failures[calls++];
      return failure ? Promise.reject(failure) : Promise.resolve('ok');
    },
    calls: () => calls,
  };
}

describe('isTransient', () => {
  it.each([
    ['a 429 from the provider', new RateLimitError('429'), true],
    ['a sandbox that timed out or died (502)', new TimeoutError('gone'), true],
    ['a sandbox that no longer exists', new NotFoundError('sandbox x not found'), true],
    ['a broken connection', Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }), true],
    ['a refused connection (code on the error)', Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }), true],
    ['a 503 from the provider', new SandboxError('503 Service Unavailable'), true],
    ['a 400 from the provider', new SandboxError('400 Bad Request'), false],
    ['wrong credentials', new AuthenticationError('bad key'), false],
    ['an invalid argument', new InvalidArgumentError('bad'), false],
    ['anything else', new Error('boom'), false],
  ])('%s → %s', (_name, error, expected) => {
    expect(isTransient(error)).toBe(expected);
  });
});

describe('SandboxResilience', () => {
  it('retries transient failures with exponential backoff, then succeeds', async () => {
    const resilience = new SandboxResilience({ jitter: false, initialDelayMs: 100, maxAttempts: 3 });
    const { operation, calls } = scripted(new TimeoutError('gone'), new RateLimitError('429'));
    const result = resilience.execute(operation);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls()).toBe(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    await expect(result).resolves.toBe('ok');
    expect(resilience.stats()).toEqual({ state: 'closed', attempts: 3, retries: 2, transientFailures: 2, rejectedOpen: 0, opened: 0 });
  });

  it('gives up after maxAttempts with the last error', async () => {
    const resilience = new SandboxResilience({ jitter: false, initialDelayMs: 10, maxAttempts: 2 });
    const { operation, calls } = scripted(new TimeoutError('first'), new TimeoutError('second'), new TimeoutError('third'));
    const result = resilience.execute(operation);
    const settled = expect(result).rejects.toThrow('second');
    await vi.advanceTimersByTimeAsync(10);
    await settled;
    expect(calls()).toBe(2);
  });

  it('returns a non-transient error at once, without retrying or counting it', async () => {
    const resilience = new SandboxResilience({ breakerThreshold: 1 });
    const { operation, calls } = scripted(new AuthenticationError('bad key'));
    await expect(resilience.execute(operation)).rejects.toBeInstanceOf(AuthenticationError);
    expect(calls()).toBe(1);
    expect(resilience.state).toBe('closed');
  });

  it('opens after consecutive transient failures, refuses at once while open, and closes after a good half-open trial', async () => {
    const resilience = new SandboxResilience({ maxAttempts: 1, breakerThreshold: 3, halfOpenAfterMs: 10_000 });
    for (let failure = 0; failure < 3; failure++) {
      await expect(resilience.execute(() => Promise.reject(new TimeoutError('gone')))).rejects.toBeInstanceOf(TimeoutError);
    }
    expect(resilience.state).toBe('open');
    vi.advanceTimersByTime(4_000);
    const refused = await resilience.execute(() => Promise.resolve('never runs')).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ProviderUnavailableError);
    expect((refused as ProviderUnavailableError).retryAfterMs).toBe(6_000);
    expect((refused as ProviderUnavailableError).retryable).toBe(true);

    vi.advanceTimersByTime(6_000);
    await expect(resilience.execute(() => Promise.resolve('trial'))).resolves.toBe('trial');
    expect(resilience.state).toBe('closed');
    expect(resilience.stats()).toMatchObject({ opened: 1, rejectedOpen: 1, transientFailures: 3 });
  });

  it('opens again when the half-open trial fails', async () => {
    const resilience = new SandboxResilience({ maxAttempts: 1, breakerThreshold: 1, halfOpenAfterMs: 1_000 });
    await expect(resilience.execute(() => Promise.reject(new TimeoutError('gone')))).rejects.toBeInstanceOf(TimeoutError);
    vi.advanceTimersByTime(1_000);
    await expect(resilience.execute(() => Promise.reject(new TimeoutError('still gone')))).rejects.toBeInstanceOf(TimeoutError);
    expect(resilience.state).toBe('open');
    expect(resilience.stats().opened).toBe(2);
  });

  it('a success resets the count of consecutive failures', async () => {
    const resilience = new SandboxResilience({ maxAttempts: 1, breakerThreshold: 2 });
    await expect(resilience.execute(() => Promise.reject(new TimeoutError('gone')))).rejects.toThrow();
    await resilience.execute(() => Promise.resolve('ok'));
    await expect(resilience.execute(() => Promise.reject(new TimeoutError('gone')))).rejects.toThrow();
    expect(resilience.state).toBe('closed');
  });

  it.each([
    [{ maxAttempts: 0 }, 'maxAttempts'],
    [{ initialDelayMs: -1 }, 'initialDelayMs'],
    [{ initialDelayMs: 500, maxDelayMs: 100 }, 'maxDelayMs'],
    [{ breakerThreshold: 1.5 }, 'breakerThreshold'],
    [{ halfOpenAfterMs: 0 }, 'halfOpenAfterMs'],
  ])('refuses %j naming %s', (options, field) => {
    expect(() => compileResilienceOptions(options)).toThrow(InvalidInputError);
    expect(() => compileResilienceOptions(options)).toThrow(new RegExp(`^${field}:`));
  });
});
