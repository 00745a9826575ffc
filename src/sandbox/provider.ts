import {
  Sandbox as SdkSandbox,
  type Context,
  type SandboxInfo as SdkSandboxInfo,
  type SandboxMetrics as SdkSandboxMetrics,
} from '@e2b/code-interpreter';
import { InvalidInputError, SystemClock, type Clock } from '../core/index.js';
import { apiKeyOf, type ResolvedSandboxConnection, type SandboxConnection } from './connection.js';
import { providerFailureOf } from './failures.js';
import { RateLimiter, type RateLimiterOptions } from './ratelimit.js';

/**
 * A sandbox from a {@link SandboxProvider}: the SDK's own object (`commands`, `files`, the code
 * interpreter's `runCode` and contexts, `setTimeout`, `kill`), handed out as it is. Calls on it go
 * straight to the sandbox, so they cost what the SDK costs: nothing stands between the exec service's
 * hot path (`runCode`) and the sandbox.
 */
export type Sandbox = SdkSandbox;
/** An interpreter context in a {@link Sandbox} (`createCodeContext`), with its own state. */
export type CodeContext = Context;
/** What the provider says of a sandbox (`info`, `list`): template, metadata, state, lifetime, limits. */
export type SandboxInfo = SdkSandboxInfo;
/** One sample of a sandbox's CPU, memory and disk use (`metrics`). */
export type SandboxMetrics = SdkSandboxMetrics;

/** What {@link SandboxProvider.create} makes. */
export interface CreateSandboxOptions {
  /** Template name or id. */
  readonly template: string;
  /** Tags kept with the sandbox, by which {@link SandboxProvider.list} finds it. @default {} */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Environment variables of every process in the sandbox. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The sandbox's lifetime from now: the provider kills it after this unless `setTimeout` extends it.
   * Not the time limit of one request.
   * @default 300_000 (the SDK's)
   */
  readonly timeoutMs?: number;
  /**
   * Whether code in the sandbox may reach the network: false gives it none (on the local cloud an empty
   * network namespace, loopback only; on E2B cloud all egress denied).
   * @default true (the providers')
   */
  readonly allowInternetAccess?: boolean;
}

/**
 * The one way the product reaches sandboxes, local cloud and E2B cloud alike (they differ only in the
 * connection): make, find and end sandboxes through the provider's control plane, and work in one
 * through the {@link Sandbox} it hands out. Every control-plane call waits for the provider's rate
 * limits first ({@link SandboxProvider.rateLimiter}): a creation for a `create` token, anything else
 * for a `lifecycle` one.
 */
export interface SandboxProvider {
  /** Where the provider connects, with the API key it sends. */
  readonly connection: ResolvedSandboxConnection;
  /**
   * The provider's rate limits, shared by everything that uses this provider. Calls made on a
   * {@link Sandbox} itself (commands, files, `runCode`) are the callers' to count as `operation`s.
   */
  readonly rateLimiter: RateLimiter;
  /**
   * Makes a sandbox of `options.template` and connects to it.
   * @throws the SDK's error (`RateLimitError`, `AuthenticationError`, an unknown template, …); see {@link providerFailureOf}.
   */
  create(options: CreateSandboxOptions): Promise<Sandbox>;
  /** Connects to a running sandbox by id (resuming it when paused). @throws the SDK's `NotFoundError` when it is gone. */
  connect(sandboxId: string): Promise<Sandbox>;
  /** Every running or paused sandbox whose metadata holds all of `metadata` (all pages). */
  list(metadata?: Readonly<Record<string, string>>): Promise<readonly SandboxInfo[]>;
  /** Kills a sandbox by id; `false` when it was already gone. */
  kill(sandboxId: string): Promise<boolean>;
  /**
   * Pauses a running sandbox by id: its processes are frozen, memory and files kept, until
   * {@link SandboxProvider.connect} resumes it.
   * @returns `false` when it was paused already.
   * @throws the SDK's `NotFoundError` when it is gone.
   */
  pause(sandboxId: string): Promise<boolean>;
  /** The sandbox's recent CPU, memory and disk samples, oldest first. */
  metrics(sandboxId: string): Promise<readonly SandboxMetrics[]>;
  /** What the provider says of one sandbox. @throws the SDK's `SandboxNotFoundError` when it is gone. */
  info(sandboxId: string): Promise<SandboxInfo>;
}

/** What the provider says of one sandbox, for health checks: its state and its latest CPU and memory sample. */
export interface SandboxCondition {
  /** `gone`: the provider no longer has it; `unknown`: the provider could not be asked. */
  readonly state: 'running' | 'paused' | 'gone' | 'unknown';
  readonly resources: { readonly cpuUsedPct: number; readonly memUsedBytes: number; readonly memTotalBytes: number } | null;
}

/**
 * The provider's word on sandbox `sandboxId` (its info, and its latest metrics sample when the
 * provider has one). Never rejects: a sandbox the provider does not know is `gone`, and one it could
 * not be asked about (unreachable, rate-limited, a server error) is `unknown`.
 */
export async function inspectSandbox(provider: SandboxProvider, sandboxId: string): Promise<SandboxCondition> {
  try {
    const [info, samples] = await Promise.all([provider.info(sandboxId), provider.metrics(sandboxId).catch(() => [])]);
    const last = samples.at(-1);
    return {
      state: info.state === 'paused' ? 'paused' : 'running',
      resources: last === undefined ? null : { cpuUsedPct: last.cpuUsedPct, memUsedBytes: last.memUsed, memTotalBytes: last.memTotal },
    };
  } catch (error) {
    return { state: providerFailureOf(error) === 'not-found' ? 'gone' : 'unknown', resources: null };
  }
}

/** Options of {@link createSandboxProvider}. Only `connection` is required. */
export interface SandboxProviderOptions {
  /** Where sandboxes are: a local cloud's `{ apiKey, apiUrl, sandboxUrl }`, or `{ apiKey }` (or `{}`, with `E2B_API_KEY`) for E2B cloud. */
  connection: SandboxConnection;
  /**
   * The provider's rate limits. A local cloud has none of its own: pass {@link LOCAL_CLOUD_RATE_LIMIT}.
   * @default E2B's hobby plan (1 creation/s, 40,000 sandbox operations per 60 s, 20,000 lifecycle calls per 30 s)
   */
  rateLimit?: RateLimiterOptions;
  /** @default new SystemClock() */
  clock?: Clock;
  /** Where `E2B_API_KEY` is read when `connection` has no `apiKey`. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/**
 * Rate limits for a local cloud, which has no provider limit on creation: 50 creations a second keeps
 * the creation bucket out of the way of warm pools and swarms (E2B's plan limits apply to E2B cloud).
 */
export const LOCAL_CLOUD_RATE_LIMIT: Readonly<RateLimiterOptions> = Object.freeze({ creationPerSecond: 50 });

/**
 * A {@link SandboxProvider} over the `e2b` SDK (`@e2b/code-interpreter`'s `Sandbox`, so every sandbox
 * also runs code), the product's only sandbox client.
 * @throws MissingApiKeyError when neither `connection.apiKey` nor `E2B_API_KEY` is set.
 * @throws InvalidInputError naming `connection` when it is not an object, or the rate-limit field at fault.
 */
export function createSandboxProvider(options: SandboxProviderOptions): SandboxProvider {
  const given = options?.connection;
  if (typeof given !== 'object' || given === null) {
    throw new InvalidInputError('connection', 'is required: pass { apiKey, apiUrl, sandboxUrl } of a local cloud, or { apiKey } for E2B cloud');
  }
  const connection: ResolvedSandboxConnection = Object.freeze({
    apiKey: apiKeyOf(given, options.env ?? process.env),
    ...(given.apiUrl === undefined ? {} : { apiUrl: given.apiUrl }),
    ...(given.sandboxUrl === undefined ? {} : { sandboxUrl: given.sandboxUrl }),
    ...(given.domain === undefined ? {} : { domain: given.domain }),
  });
  return new SdkProvider(connection, new RateLimiter(options.clock ?? new SystemClock(), options.rateLimit));
}

class SdkProvider implements SandboxProvider {
  constructor(
    readonly connection: ResolvedSandboxConnection,
    readonly rateLimiter: RateLimiter,
  ) {}

  async create(options: CreateSandboxOptions): Promise<Sandbox> {
    await this.rateLimiter.acquire('create');
    try {
      const sandbox = await SdkSandbox.create(options.template, {
        ...this.connection,
        ...(options.metadata === undefined ? {} : { metadata: { ...options.metadata } }),
        ...(options.env === undefined ? {} : { envs: { ...options.env } }),
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.allowInternetAccess === undefined ? {} : { allowInternetAccess: options.allowInternetAccess }),
      });
      this.rateLimiter.report('create', 'ok');
      return sandbox;
    } catch (error) {
      this.rateLimiter.report('create', providerFailureOf(error) === 'rate-limited' ? 'rate-limited' : 'failed');
      throw error;
    }
  }

  async connect(sandboxId: string): Promise<Sandbox> {
    await this.rateLimiter.acquire('lifecycle');
    return SdkSandbox.connect(sandboxId, { ...this.connection });
  }

  async list(metadata: Readonly<Record<string, string>> = {}): Promise<readonly SandboxInfo[]> {
    const paginator = SdkSandbox.list({ ...this.connection, query: { metadata: { ...metadata } } });
    const found: SandboxInfo[] = [];
    while (paginator.hasNext) {
      // One call to the provider per page.
      await this.rateLimiter.acquire('lifecycle');
      found.push(...(await paginator.nextItems()));
    }
    return found;
  }

  async kill(sandboxId: string): Promise<boolean> {
    await this.rateLimiter.acquire('lifecycle');
    return SdkSandbox.kill(sandboxId, { ...this.connection });
  }

  async pause(sandboxId: string): Promise<boolean> {
    await this.rateLimiter.acquire('lifecycle');
    return SdkSandbox.pause(sandboxId, { ...this.connection });
  }

  async metrics(sandboxId: string): Promise<readonly SandboxMetrics[]> {
    await this.rateLimiter.acquire('lifecycle');
    return SdkSandbox.getMetrics(sandboxId, { ...this.connection });
  }

  async info(sandboxId: string): Promise<SandboxInfo> {
    await this.rateLimiter.acquire('lifecycle');
    return SdkSandbox.getInfo(sandboxId, { ...this.connection });
  }
}
