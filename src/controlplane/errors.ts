import { TradeswarmError } from '../core/index.js';

/**
 * A deploy or scale would hold more sandboxes than its environment allows. Nothing was started or
 * changed. Not retryable as it is: free sandboxes, or raise the limit.
 */
export class CapacityError extends TradeswarmError {
  override readonly name = 'CapacityError';

  constructor(
    readonly environment: string,
    readonly limit: number,
    readonly inUse: number,
    readonly adding: number,
  ) {
    super(
      `${environment} allows ${limit} sandbox${limit === 1 ? '' : 'es'} at once; ${inUse} ${inUse === 1 ? 'is' : 'are'} in use and this needs ${adding} more. ` +
        `Nothing was changed: stop or scale down a deployment in ${environment}, deploy to another environment, or raise environments.${environment}.maxSandboxes in the config file`,
    );
  }
}

/** An agent role asked for a resource tier its environment does not allow. Not retryable: choose an allowed tier. */
export class TierNotAllowedError extends TradeswarmError {
  override readonly name = 'TierNotAllowedError';

  constructor(
    readonly tier: string,
    readonly environment: string,
    readonly allowed: readonly string[],
    /** Where the tier was asked for (`swarm.resources.roles.hub`), when known. */
    readonly field?: string,
  ) {
    super(`${field === undefined ? '' : `${field}: `}tier ${tier} is not allowed in ${environment}, which allows ${allowed.join(', ')}; choose one of those, or widen environments.${environment}.cpus and memoryMB in the config file`);
  }
}

/** A deployment's name is taken. Nothing was stored or started. */
export class DeploymentNameTakenError extends TradeswarmError {
  override readonly name = 'DeploymentNameTakenError';

  constructor(readonly deploymentName: string) {
    super(`a deployment named ${deploymentName} exists; choose another --name, or stop and remove that one first`);
  }
}

/** No deployment has that id or name. */
export class DeploymentNotFoundError extends TradeswarmError {
  override readonly name = 'DeploymentNotFoundError';

  constructor(readonly ref: string) {
    super(`no deployment has the id or name ${ref}; \`tradeswarm ps\` lists them`);
  }
}

/** The server that leads, as a follower points clients at it (`null` fields: it did not say). */
export interface LeaderPointer {
  /** Who leads (`<host>:<pid>:<id>`). */
  readonly holder: string;
  /** Its API, as it advertised it. */
  readonly url: string | null;
  /** The lease's epoch (raised at each takeover). */
  readonly epoch: number;
  /** Until when its lease runs unless renewed, by the database's clock (ISO 8601). */
  readonly expiresAt: string;
}

/**
 * This server follows: another server leads the control plane (they share one PostgreSQL), and only
 * the leader runs deployments and answers the API. Retryable: at the leader (`leader.url`), or here
 * once this server takes over.
 */
export class NotLeaderError extends TradeswarmError {
  override readonly name = 'NotLeaderError';
  /** When to ask again when no server leads (a takeover under way). */
  readonly retryAfterMs: number | undefined;

  constructor(readonly leader: LeaderPointer | null) {
    super(
      leader === null
        ? 'this server follows, and no server leads at the moment (the lease is free or being taken over): try again in a second or two'
        : `this server follows: ${leader.holder} leads (lease epoch ${leader.epoch}, until ${leader.expiresAt} unless renewed); ` +
            (leader.url === null ? 'send the request to that server' : `send the request to its API at ${leader.url} (--url ${leader.url})`),
      { retryable: true },
    );
    this.retryAfterMs = leader === null ? 1_000 : undefined;
  }
}
