import { InvalidInputError, errorMessage, type Logger } from '../core/index.js';
import { procLiveness, type ProcessLiveness } from './liveness.js';

/**
 * Metadata key holding a sandbox's owner: the service or run that made it (`tradeswarm-exec`, the
 * swarm's agents, …). The name says `pool` because the exec pool tagged its sandboxes so first: kept,
 * so that the sandboxes an older version left are still found.
 */
export const POOL_OWNER_METADATA_KEY = 'tradeswarm-pool-owner';
/** Metadata key holding the tag of the process that made the sandbox (see {@link ProcessLiveness}). */
export const POOL_PROCESS_METADATA_KEY = 'tradeswarm-pool-process';

const TAG_VALUE = /^[A-Za-z0-9._-]{1,64}$/;

/** A sandbox as the provider lists it: enough to tell whose it is. */
export interface ListedSandbox {
  readonly sandboxId: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** What {@link SandboxOwner.killLeaked} needs of a provider: listing by metadata and killing by id ({@link SandboxProvider} fits). */
export interface SandboxDirectory {
  /** Every running or paused sandbox whose metadata holds all of `metadata` (all pages). */
  list(metadata: Readonly<Record<string, string>>): Promise<readonly ListedSandbox[]>;
  /** Kills one sandbox; `false` when it was already gone. */
  kill(sandboxId: string): Promise<boolean>;
}

/**
 * `value` when it can be a metadata tag: 1-64 letters, digits, `.`, `_` or `-`.
 * @throws InvalidInputError naming `field`.
 */
export function tagValue(field: string, value: string): string {
  if (typeof value !== 'string' || !TAG_VALUE.test(value)) {
    throw new InvalidInputError(field, `must be 1-64 letters, digits, '.', '_' or '-', got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Who makes sandboxes, so that what a crashed run left is found and killed by the next run of the same
 * owner, and never what a run of it that still runs holds: every sandbox is tagged with the owner and
 * this process ({@link ProcessLiveness}: boot, pid namespace, pid and start time). A run on another
 * machine cannot be asked whether it still runs; its sandboxes are left to end by their own lifetime.
 * The exec pool and the swarm's agents use it.
 */
export class SandboxOwner {
  /** The tags every sandbox this owner makes in this process carries. */
  readonly metadata: Readonly<Record<string, string>>;

  /**
   * @param owner 1-64 letters, digits, `.`, `_` or `-`
   * @param liveness @default from Linux's /proc
   * @throws InvalidInputError naming `owner`.
   */
  constructor(
    readonly owner: string,
    readonly liveness: ProcessLiveness = procLiveness(),
  ) {
    tagValue('owner', owner);
    this.metadata = Object.freeze({ [POOL_OWNER_METADATA_KEY]: owner, [POOL_PROCESS_METADATA_KEY]: liveness.tag });
  }

  /**
   * Kills the sandboxes of this owner whose process has ended (left by a run that crashed), except those
   * `held` claims. A sandbox that cannot be killed is logged and left to its lifetime.
   * @returns how many were killed.
   * @throws whatever `directory.list` throws (the provider is unreachable).
   */
  async killLeaked(directory: SandboxDirectory, options: { readonly held?: (sandboxId: string) => boolean; readonly logger: Logger }): Promise<number> {
    const { logger } = options;
    const listed = await directory.list({ [POOL_OWNER_METADATA_KEY]: this.owner });
    const untracked = listed.filter((sandbox) => options.held?.(sandbox.sandboxId) !== true);
    const leaked = untracked.filter((sandbox) => this.liveness.stateOf(sandbox.metadata[POOL_PROCESS_METADATA_KEY] ?? '') === 'ended');
    if (leaked.length < untracked.length) {
      logger.info(
        { owner: this.owner, left: untracked.length - leaked.length },
        'left sandboxes of this owner whose process still runs, or ran on another machine; they end by their own lifetime once nothing extends it',
      );
    }
    const results = await Promise.all(
      leaked.map(async (sandbox) => {
        try {
          return await directory.kill(sandbox.sandboxId);
        } catch (error) {
          logger.warn({ sandboxId: sandbox.sandboxId, error: errorMessage(error) }, 'could not kill a sandbox left by an earlier run');
          return false;
        }
      }),
    );
    const killed = results.filter(Boolean).length;
    if (leaked.length > 0) logger.warn({ found: leaked.length, killed, owner: this.owner }, 'killed sandboxes left by an earlier run');
    return killed;
  }
}
