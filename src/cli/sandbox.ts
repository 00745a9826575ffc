import { InvalidInputError } from '../core/index.js';
import { SANDBOX_KINDS, resolveSandboxConnection, type ResolvedSandboxConnection, type SandboxKind } from '../sandbox/index.js';

/** Where `--sandbox` says sandboxes run: the command's own local cloud, or E2B cloud with this connection. */
export type SandboxFlag = { readonly kind: 'local' } | { readonly kind: 'e2b'; readonly connection: ResolvedSandboxConnection };

/**
 * Reads `--sandbox <kind>` for every command that takes it (`run`, `exec`, `exec serve`, `mcp`), so
 * they refuse the same values with the same words.
 * @throws InvalidInputError naming `--sandbox` for a value other than `local` or `e2b`.
 * @throws MissingApiKeyError for `e2b` without `E2B_API_KEY`.
 */
export function parseSandboxFlag(value: string, env: NodeJS.ProcessEnv = process.env): SandboxFlag {
  if (!(SANDBOX_KINDS as readonly string[]).includes(value)) {
    throw new InvalidInputError('--sandbox', `must be ${SANDBOX_KINDS.join(' or ')}, got ${JSON.stringify(value)}`);
  }
  const kind = value as SandboxKind;
  return kind === 'local' ? { kind } : { kind, connection: resolveSandboxConnection({ kind, env }) };
}
