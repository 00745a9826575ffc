import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  decorrelatedJitterGenerator,
  handleWhen,
  noJitterGenerator,
  retry,
  wrap,
  type IPolicy,
} from 'cockatiel';
import { InvalidInputError } from '../../core/index.js';
import { providerFailureOf } from '../../sandbox/index.js';
import { InterpreterLostError, ProviderUnavailableError } from '../errors.js';

/** Options of {@link SandboxResilience}. Every field is optional. */
export interface ResilienceOptions {
  /** Attempts of one operation, the first included. @default 3 */
  maxAttempts?: number;
  /** Delay before the first retry; later ones grow exponentially. @default 100 */
  initialDelayMs?: number;
  /** Longest delay between two attempts. @default 2000 */
  maxDelayMs?: number;
  /** Randomise delays (decorrelated jitter) so that many callers do not retry in step. Off only in tests. @default true */
  jitter?: boolean;
  /** Consecutive transient failures that open the breaker. @default 5 */
  breakerThreshold?: number;
  /** How long the breaker stays open before it lets one trial through (half-open). @default 10000 */
  halfOpenAfterMs?: number;
}

/** The compiled, complete options. */
export type ResilienceConfig = Readonly<Required<ResilienceOptions>>;

/** @throws InvalidInputError naming the field. */
export function compileResilienceOptions(options: ResilienceOptions = {}): ResilienceConfig {
  const whole = (field: keyof ResilienceOptions, value: number, min: number): number => {
    if (!Number.isInteger(value) || value < min) throw new InvalidInputError(field, `must be a whole number >= ${min}, got ${value}`);
    return value;
  };
  const config = {
    maxAttempts: whole('maxAttempts', options.maxAttempts ?? 3, 1),
    initialDelayMs: whole('initialDelayMs', options.initialDelayMs ?? 100, 0),
    maxDelayMs: whole('maxDelayMs', options.maxDelayMs ?? 2000, 0),
    jitter: options.jitter ?? true,
    breakerThreshold: whole('breakerThreshold', options.breakerThreshold ?? 5, 1),
    halfOpenAfterMs: whole('halfOpenAfterMs', options.halfOpenAfterMs ?? 10_000, 1),
  };
  if (config.maxDelayMs < config.initialDelayMs) throw new InvalidInputError('maxDelayMs', `must be >= initialDelayMs (${config.initialDelayMs}), got ${config.maxDelayMs}`);
  return Object.freeze(config);
}

/**
 * Whether trying again (on another sandbox) can help: the provider rate-limited us, a sandbox died or
 * timed out under us, the connection broke, or the provider failed (see `providerFailureOf`). Wrong
 * credentials, invalid arguments and failures of the user's own code are not transient; they are
 * returned to the caller at once and do not trip the breaker.
 */
export function isTransient(error: unknown): boolean {
  return error instanceof InterpreterLostError || providerFailureOf(error) !== undefined;
}

/** The breaker's state, as the service reports it. */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

const STATE_NAMES: Readonly<Record<CircuitState, BreakerState>> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * Retries with exponential backoff (and jitter) around a circuit breaker, both from cockatiel, for
 * operations against the sandbox provider. Only transient failures are retried or counted by the
 * breaker. While the breaker is open, calls fail at once with a retryable {@link ProviderUnavailableError}.
 */
export class SandboxResilience {
  readonly config: ResilienceConfig;
  private readonly policy: IPolicy;
  private readonly breaker;
  private openedAtMs: number | undefined;
  private counters = { attempts: 0, retries: 0, transientFailures: 0, rejectedOpen: 0, opened: 0 };

  constructor(options: ResilienceOptions = {}) {
    this.config = compileResilienceOptions(options);
    const transient = handleWhen(isTransient);
    this.breaker = circuitBreaker(transient, { halfOpenAfter: this.config.halfOpenAfterMs, breaker: new ConsecutiveBreaker(this.config.breakerThreshold) });
    // Date.now(), not an injected Clock: cockatiel times the open period with Date.now(), and the time
    // left until its half-open trial must be measured on the same clock.
    this.breaker.onBreak(() => {
      this.openedAtMs = Date.now();
      this.counters.opened++;
    });
    this.breaker.onReset(() => (this.openedAtMs = undefined));
    const retryPolicy = retry(transient, {
      maxAttempts: this.config.maxAttempts - 1,
      backoff: this.config.jitter
        ? new ExponentialBackoff({ initialDelay: this.config.initialDelayMs, maxDelay: this.config.maxDelayMs, generator: decorrelatedJitterGenerator })
        : new ExponentialBackoff({ initialDelay: this.config.initialDelayMs, maxDelay: this.config.maxDelayMs, generator: noJitterGenerator }),
    });
    retryPolicy.onRetry(() => this.counters.retries++);
    this.policy = wrap(retryPolicy, this.breaker);
  }

  /**
   * Runs `operation` with retries and the breaker. `attempt` counts from 1.
   * @throws ProviderUnavailableError while the breaker is open; otherwise the operation's last error.
   */
  async execute<T>(operation: (context: { attempt: number; signal: AbortSignal }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let attempt = 0;
    try {
      return await this.policy.execute(async ({ signal: policySignal }) => {
        attempt++;
        this.counters.attempts++;
        try {
          return await operation({ attempt, signal: policySignal });
        } catch (error) {
          if (isTransient(error)) this.counters.transientFailures++;
          throw error;
        }
      }, signal);
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        this.counters.rejectedOpen++;
        const elapsedMs = this.openedAtMs === undefined ? 0 : Date.now() - this.openedAtMs;
        throw new ProviderUnavailableError(Math.max(0, this.config.halfOpenAfterMs - elapsedMs), { cause: error });
      }
      throw error;
    }
  }

  get state(): BreakerState {
    return STATE_NAMES[this.breaker.state];
  }

  /** Counters since start, for metrics. */
  stats(): { state: BreakerState; attempts: number; retries: number; transientFailures: number; rejectedOpen: number; opened: number } {
    return { state: this.state, ...this.counters };
  }
}
