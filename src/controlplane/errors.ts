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
  ) {
    super(`tier ${tier} is not allowed in ${environment}, which allows ${allowed.join(', ')}; choose one of those, or widen environments.${environment}.cpus and memoryMB in the config file`);
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
