import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SpecError, specProblemOf } from '../runspec/index.js';
import { RESOURCE_TIERS, type ResourceTier, TIER_NAMES, type TierName, describeTier } from '../sandbox/index.js';
import { CapacityError, TierNotAllowedError } from './errors.js';

export { RESOURCE_TIERS, type ResourceTier, type TierName };

/** The environments a deployment runs in, from trying things out to trading for real. */
export const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;
export type EnvironmentName = (typeof ENVIRONMENTS)[number];

/**
 * What happens when an agent fails (the fault-tolerance ladder reads it): `none` restarts nothing
 * beyond the swarm's own restarts, `manual` raises an alert for an operator, `automatic` fails over.
 */
export const FAILOVER_MODES = ['none', 'manual', 'automatic'] as const;
export type FailoverMode = (typeof FAILOVER_MODES)[number];

/** One environment's rules, complete. */
export interface Environment {
  readonly name: EnvironmentName;
  /** Sandboxes its deployments may hold at once (agents and standbys). */
  readonly maxSandboxes: number;
  /** How long an agent's sandbox lives without being renewed. */
  readonly agentTimeoutMs: number;
  /** The CPU cores and memory an agent's sandbox may have: the tiers inside both ranges are allowed. */
  readonly cpus: { readonly min: number; readonly max: number };
  readonly memoryMB: { readonly min: number; readonly max: number };
  /** Spend per day its deployments may reach (stored now; enforced once cost is tracked). */
  readonly costLimitPerDayUsd: number;
  /** Days its stored data (events, orders, fills, equity points) is kept. */
  readonly retentionDays: number;
  readonly failover: FailoverMode;
  /** The sandbox template its agents run in, and the env vars every agent gets there. */
  readonly template: string;
  readonly templateEnvs: Readonly<Record<string, string>>;
  /**
   * Off the embedded local cloud (E2B, an external cloud): the template of each tier's size, by tier.
   * A tier named here runs in its template; one left out runs in `template`, whatever its size. The
   * local cloud makes a template per tier by itself and ignores this. @default {}
   */
  readonly tierTemplates: Readonly<Partial<Record<TierName, string>>>;
  /** The smallest allowed tier: what a role that names none gets. */
  readonly defaultTier: TierName;
}

/** Every environment, by name. */
export type Environments = Readonly<Record<EnvironmentName, Environment>>;

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** The built-in matrix: each field may be overridden by a config file (see {@link compileEnvironments}). */
const DEFAULTS: Readonly<Record<EnvironmentName, Omit<Environment, 'name' | 'defaultTier'>>> = {
  dev: {
    maxSandboxes: 3,
    agentTimeoutMs: 30 * MINUTE_MS,
    cpus: { min: 1, max: 2 },
    memoryMB: { min: 512, max: 1024 },
    costLimitPerDayUsd: 5,
    retentionDays: 1,
    failover: 'none',
    template: 'dev-trading-agent',
    templateEnvs: { ENV: 'dev', LOG_LEVEL: 'debug' },
    tierTemplates: {},
  },
  staging: {
    maxSandboxes: 10,
    agentTimeoutMs: 2 * HOUR_MS,
    cpus: { min: 2, max: 4 },
    memoryMB: { min: 1024, max: 2048 },
    costLimitPerDayUsd: 50,
    retentionDays: 7,
    failover: 'manual',
    template: 'staging-trading-agent',
    templateEnvs: { ENV: 'staging', LOG_LEVEL: 'info' },
    tierTemplates: {},
  },
  prod: {
    maxSandboxes: 50,
    agentTimeoutMs: 4 * HOUR_MS,
    cpus: { min: 4, max: 8 },
    memoryMB: { min: 2048, max: 4096 },
    costLimitPerDayUsd: 500,
    retentionDays: 90,
    failover: 'automatic',
    template: 'prod-trading-agent',
    templateEnvs: { ENV: 'prod', LOG_LEVEL: 'warn' },
    tierTemplates: {},
  },
};

const range = (min: number, max: number) =>
  z
    .strictObject({ min: z.number().min(min).max(max), max: z.number().min(min).max(max) })
    .refine((value) => value.min <= value.max, { message: 'min must not be above max' });

/** What a config file may say of one environment: any field, the rest from the built-in matrix. */
const environmentOverride = z.strictObject({
  maxSandboxes: z.int().min(1).max(10_000).optional(),
  agentTimeoutMs: z.int().min(MINUTE_MS).max(24 * HOUR_MS).optional(),
  cpus: range(0.25, 64).optional(),
  memoryMB: range(128, 262_144).optional(),
  costLimitPerDayUsd: z.number().min(0).max(1_000_000).optional(),
  retentionDays: z.int().min(1).max(3650).optional(),
  failover: z.enum(FAILOVER_MODES).optional(),
  template: z.string().min(1).max(128).optional(),
  templateEnvs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an env var name'), z.string().max(4096)).optional(),
  tierTemplates: z.partialRecord(z.enum(TIER_NAMES), z.string().min(1).max(128)).optional(),
});

/** A config file: `environments:` with any of `dev`, `staging`, `prod`. */
export const environmentsFileSchema = z.strictObject({
  environments: z.strictObject({ dev: environmentOverride.optional(), staging: environmentOverride.optional(), prod: environmentOverride.optional() }).prefault({}),
});

/**
 * The environments: the built-in matrix, with what `file` (a parsed config file) overrides.
 * @throws SpecError naming every field at fault, its value and what is allowed; also when an
 *   environment's CPU and memory ranges leave no resource tier.
 */
export function compileEnvironments(file: unknown = {}, source = 'environments config'): Environments {
  const parsed = environmentsFileSchema.safeParse(file);
  if (!parsed.success) throw new SpecError(source, parsed.error.issues.map((issue) => specProblemOf(issue, file)));
  const compiled = {} as Record<EnvironmentName, Environment>;
  for (const name of ENVIRONMENTS) {
    const override = parsed.data.environments[name] ?? {};
    const merged = { ...DEFAULTS[name], ...stripUndefined(override) };
    const allowed = tiersWithin(merged);
    const smallest = allowed[0];
    if (smallest === undefined) {
      throw new SpecError(source, [
        {
          field: `environments.${name}`,
          value: { cpus: merged.cpus, memoryMB: merged.memoryMB },
          allowed: `must allow at least one resource tier (${TIER_NAMES.map((tier) => `${tier}: ${describeTier(RESOURCE_TIERS[tier])}`).join('; ')}); widen cpus or memoryMB`,
        },
      ]);
    }
    compiled[name] = Object.freeze({ name, ...merged, templateEnvs: Object.freeze({ ...merged.templateEnvs }), tierTemplates: Object.freeze({ ...merged.tierTemplates }), defaultTier: smallest.name });
  }
  return Object.freeze(compiled);
}

/**
 * Reads a YAML config file of environments (see {@link environmentsFileSchema}).
 * @throws SpecError naming every mistake; the file system's error when it cannot be read.
 */
export async function loadEnvironments(path: string): Promise<Environments> {
  return compileEnvironments(parseYaml(await readFile(path, 'utf8')) ?? {}, path);
}

/** The tiers an environment allows, smallest first. */
export function allowedTiers(environment: Pick<Environment, 'cpus' | 'memoryMB'>): ResourceTier[] {
  return tiersWithin(environment);
}

/**
 * The resource tier an agent role gets in `environment`: `requested`, or the smallest allowed.
 * @param field where `requested` was asked for (`swarm.resources.roles.hub`), for the error.
 * @throws TierNotAllowedError naming the field, the tier, the environment and the tiers it allows.
 */
export function tierFor(environment: Environment, requested?: TierName, field?: string): ResourceTier {
  const tier = RESOURCE_TIERS[requested ?? environment.defaultTier];
  if (!allowedTiers(environment).some((allowed) => allowed.name === tier.name)) {
    throw new TierNotAllowedError(tier.name, environment.name, allowedTiers(environment).map((allowed) => allowed.name), field);
  }
  return tier;
}

/**
 * Checks that `adding` more sandboxes fit in `environment` beside the `inUse` ones.
 * @throws CapacityError naming the limit, the use and what to do; nothing should start then.
 */
export function checkCapacity(environment: Environment, inUse: number, adding: number): void {
  if (inUse + adding > environment.maxSandboxes) throw new CapacityError(environment.name, environment.maxSandboxes, inUse, adding);
}

function tiersWithin(environment: Pick<Environment, 'cpus' | 'memoryMB'>): ResourceTier[] {
  const { cpus, memoryMB } = environment;
  return TIER_NAMES.map((name) => RESOURCE_TIERS[name]).filter(
    (tier) => tier.cpus >= cpus.min && tier.cpus <= cpus.max && tier.memoryMB >= memoryMB.min && tier.memoryMB <= memoryMB.max,
  );
}

function stripUndefined<T extends object>(value: T): { [K in keyof T]-?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as { [K in keyof T]-?: Exclude<T[K], undefined> };
}
