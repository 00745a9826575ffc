import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpecError } from '../runspec/index.js';
import { allowedTiers, checkCapacity, compileEnvironments, loadEnvironments, tierFor } from './environments.js';
import { CapacityError, TierNotAllowedError } from './errors.js';

describe('the environment matrix', () => {
  it('has the built-in rules of dev, staging and prod', () => {
    const environments = compileEnvironments();
    const row = (name: 'dev' | 'staging' | 'prod') => {
      const environment = environments[name];
      return [environment.maxSandboxes, environment.agentTimeoutMs / 60_000, environment.costLimitPerDayUsd, environment.retentionDays, environment.failover, environment.template, environment.defaultTier];
    };
    expect(row('dev')).toEqual([3, 30, 5, 1, 'none', 'dev-trading-agent', 'T1']);
    expect(row('staging')).toEqual([10, 120, 50, 7, 'manual', 'staging-trading-agent', 'T2']);
    expect(row('prod')).toEqual([50, 240, 500, 90, 'automatic', 'prod-trading-agent', 'T3']);
    expect(environments.prod.templateEnvs).toEqual({ ENV: 'prod', LOG_LEVEL: 'warn' });
  });

  it.each([
    ['dev', ['T1']],
    ['staging', ['T2', 'T3']],
    ['prod', ['T3', 'T4']],
  ] as const)('%s allows the tiers inside its CPU and memory ranges: %j', (name, tiers) => {
    expect(allowedTiers(compileEnvironments()[name]).map((tier) => tier.name)).toEqual(tiers);
  });

  it('takes what a config file overrides and keeps the rest', () => {
    const environments = compileEnvironments({ environments: { dev: { maxSandboxes: 8, failover: 'manual', templateEnvs: { ENV: 'laptop' } } } });
    expect(environments.dev).toMatchObject({ maxSandboxes: 8, failover: 'manual', retentionDays: 1, templateEnvs: { ENV: 'laptop' } });
    expect(environments.prod.maxSandboxes).toBe(50);
  });

  it.each([
    [{ environments: { dev: { maxSandboxes: 0 } } }, 'environments.dev.maxSandboxes: got 0; must be >= 1'],
    [{ environments: { qa: {} } }, 'environments.qa: got {}; is not a known field; remove it or check its spelling'],
    [{ environments: { prod: { failover: 'sometimes' } } }, 'environments.prod.failover: got "sometimes"; must be one of "none", "manual", "automatic"'],
    [{ environments: { dev: { cpus: { min: 4, max: 2 } } } }, 'environments.dev.cpus: got {"min":4,"max":2}; min must not be above max'],
    [{ environments: { dev: { memoryMB: { min: 100, max: 200 } } } }, 'environments.dev.memoryMB.min: got 100; must be >= 128'],
    [{ environments: { dev: { cpus: { min: 3, max: 3 } } } }, 'environments.dev: got {"cpus":{"min":3,"max":3},"memoryMB":{"min":512,"max":1024}}; must allow at least one resource tier'],
  ])('refuses a bad config file, naming the field: %j', (file, message) => {
    expect(() => compileEnvironments(file, 'envs.yaml')).toThrow(SpecError);
    expect(() => compileEnvironments(file, 'envs.yaml')).toThrow(message);
  });

  it('reads a YAML config file, naming the file in its errors', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'tradeswarm-envs-'));
    try {
      await writeFile(join(folder, 'good.yaml'), 'environments:\n  staging: { maxSandboxes: 12 }\n');
      await writeFile(join(folder, 'bad.yaml'), 'environments:\n  staging: { maxSandbox: 12 }\n');
      expect((await loadEnvironments(join(folder, 'good.yaml'))).staging.maxSandboxes).toBe(12);
      await expect(loadEnvironments(join(folder, 'bad.yaml'))).rejects.toThrow(/bad\.yaml has 1 mistake; nothing ran[\s\S]*environments\.staging\.maxSandbox: got 12; is not a known field/);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('limits', () => {
  const { dev, prod } = compileEnvironments();

  it('gives a role its tier, or the smallest allowed, and refuses one the environment does not allow', () => {
    expect(tierFor(prod)).toMatchObject({ name: 'T3', cpus: 4, memoryMB: 2048, diskMB: 10_240 });
    expect(tierFor(prod, 'T4').name).toBe('T4');
    expect(() => tierFor(dev, 'T4')).toThrow(TierNotAllowedError);
    expect(() => tierFor(dev, 'T4')).toThrow('tier T4 is not allowed in dev, which allows T1; choose one of those, or widen environments.dev.cpus and memoryMB in the config file');
    // Named by the spec's field that asked for it.
    expect(() => tierFor(dev, 'T3', 'swarm.resources.roles.decider')).toThrow(
      'swarm.resources.roles.decider: tier T3 is not allowed in dev, which allows T1; choose one of those, or widen environments.dev.cpus and memoryMB in the config file',
    );
  });

  it('names a template per tier for clouds other than the local one, from the config file', () => {
    const environments = compileEnvironments({ environments: { prod: { tierTemplates: { T4: 'prod-agent-8cpu' } } } });
    expect(environments.prod.tierTemplates).toEqual({ T4: 'prod-agent-8cpu' });
    expect(environments.dev.tierTemplates).toEqual({});
    expect(() => compileEnvironments({ environments: { prod: { tierTemplates: { T5: 'x' } } } }, 'envs.yaml')).toThrow(/environments\.prod\.tierTemplates/);
  });

  it('refuses a deploy that would pass the sandbox limit, naming the limit, the use and what to do', () => {
    expect(() => checkCapacity(dev, 1, 2)).not.toThrow();
    expect(() => checkCapacity(dev, 2, 2)).toThrow(CapacityError);
    expect(() => checkCapacity(dev, 2, 2)).toThrow(
      'dev allows 3 sandboxes at once; 2 are in use and this needs 2 more. Nothing was changed: stop or scale down a deployment in dev, deploy to another environment, or raise environments.dev.maxSandboxes in the config file',
    );
  });
});
