/** The resource tiers' names, smallest first. */
export const TIER_NAMES = ['T1', 'T2', 'T3', 'T4'] as const;
export type TierName = (typeof TIER_NAMES)[number];

/** A sandbox size an agent role can ask for: CPU cores, memory and disk. */
export interface ResourceTier {
  readonly name: TierName;
  readonly cpus: number;
  readonly memoryMB: number;
  readonly diskMB: number;
}

/** The resource tiers, smallest first, as the seed defines them. */
export const RESOURCE_TIERS = {
  T1: { name: 'T1', cpus: 1, memoryMB: 512, diskMB: 1024 },
  T2: { name: 'T2', cpus: 2, memoryMB: 1536, diskMB: 5120 },
  T3: { name: 'T3', cpus: 4, memoryMB: 2048, diskMB: 10_240 },
  T4: { name: 'T4', cpus: 8, memoryMB: 4096, diskMB: 20_480 },
} as const satisfies Record<TierName, ResourceTier>;

/**
 * The name of the template of `template`'s size `tier` on a local cloud, which makes one per tier:
 * `dev-trading-agent` in T2 is `dev-trading-agent-t2`.
 */
export function tierTemplateName(template: string, tier: TierName): string {
  return `${template}-${tier.toLowerCase()}`;
}

/** A tier in a few words: `2 cores, 1536 MB, 5120 MB disk`. */
export function describeTier(tier: ResourceTier): string {
  return `${tier.cpus} core${tier.cpus === 1 ? '' : 's'}, ${tier.memoryMB} MB, ${tier.diskMB} MB disk`;
}
