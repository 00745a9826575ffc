import { InvalidInputError } from '../core/index.js';
import { MissingApiKeyError } from './errors.js';

/** Where sandboxes run: the embedded local cloud, or E2B cloud. */
export const SANDBOX_KINDS = ['local', 'e2b'] as const;
/** One of {@link SANDBOX_KINDS}. */
export type SandboxKind = (typeof SANDBOX_KINDS)[number];

/**
 * Where the SDK connects, and with which key: a local cloud's `{ apiKey, apiUrl, sandboxUrl }`, or
 * `{ apiKey }` for E2B cloud. Fields left out fall back to the SDK's own defaults, read from the
 * process environment (`E2B_API_URL`, `E2B_SANDBOX_URL`, `E2B_DOMAIN`), else E2B cloud's addresses.
 */
export interface SandboxConnection {
  /**
   * The API key sent to the provider. Left out, `E2B_API_KEY` is read; a provider with neither
   * refuses to start with {@link MissingApiKeyError}.
   * @default E2B_API_KEY
   */
  readonly apiKey?: string;
  /** @default E2B_API_URL, else `https://api.<domain>` (read by the SDK) */
  readonly apiUrl?: string;
  /** @default E2B_SANDBOX_URL, else E2B cloud's per-sandbox hosts (read by the SDK); a local cloud needs it */
  readonly sandboxUrl?: string;
  /** @default E2B_DOMAIN, else `e2b.app` (read by the SDK) */
  readonly domain?: string;
}

/** A {@link SandboxConnection} whose API key is known. */
export type ResolvedSandboxConnection = SandboxConnection & { readonly apiKey: string };

/** A local cloud's connection, as in `startLocalCloud(...).connection`. */
export interface LocalSandboxConnection {
  readonly apiUrl: string;
  /** @default apiUrl (the local cloud serves the API and every sandbox on one base URL) */
  readonly sandboxUrl?: string;
  readonly apiKey: string;
}

/** Options of {@link resolveSandboxConnection}. */
export interface ResolveSandboxConnectionOptions {
  kind: SandboxKind;
  /** Required when `kind` is `local`. */
  local?: LocalSandboxConnection;
  /** Where `E2B_API_KEY` is read for `kind: 'e2b'`. */
  env: NodeJS.ProcessEnv;
}

/**
 * The API key of `connection`, else `E2B_API_KEY` of `env`: the one place a missing key is found.
 * @throws MissingApiKeyError when neither holds a non-blank key.
 */
export function apiKeyOf(connection: SandboxConnection, env: NodeJS.ProcessEnv): string {
  const apiKey = connection.apiKey ?? env.E2B_API_KEY;
  if (apiKey === undefined || apiKey.trim() === '') throw new MissingApiKeyError();
  return apiKey;
}

/**
 * The SDK connection for the chosen kind of sandbox: the one way local and cloud settings are told
 * apart (the CLI's `--sandbox`, the exec service and the swarm all come through here or {@link apiKeyOf}).
 * - `e2b`: `{ apiKey: env.E2B_API_KEY }`; URLs are the SDK's defaults.
 * - `local`: the given local cloud's `apiUrl`, `sandboxUrl` and `apiKey`.
 * @throws MissingApiKeyError (an InvalidInputError naming `E2B_API_KEY`) when it is missing for `e2b`.
 * @throws InvalidInputError naming `local` when it is missing or incomplete for `local`, or `kind`
 *   when it is neither.
 */
export function resolveSandboxConnection(options: ResolveSandboxConnectionOptions): ResolvedSandboxConnection {
  const { kind } = options;
  if (kind === 'e2b') return Object.freeze({ apiKey: apiKeyOf({}, options.env) });
  if (kind === 'local') {
    const local = options.local;
    if (!local) throw new InvalidInputError('local', "is required when kind is 'local': pass the local cloud's connection (startLocalCloud(...).connection)");
    if (typeof local.apiKey !== 'string' || local.apiKey === '') throw new InvalidInputError('local.apiKey', "must be the local cloud's non-empty API key");
    const apiUrl = httpUrl('local.apiUrl', local.apiUrl);
    const sandboxUrl = local.sandboxUrl === undefined ? apiUrl : httpUrl('local.sandboxUrl', local.sandboxUrl);
    return Object.freeze({ apiKey: local.apiKey, apiUrl, sandboxUrl });
  }
  throw new InvalidInputError('kind', `must be one of ${SANDBOX_KINDS.join(', ')}, got ${String(kind)}`);
}

function httpUrl(field: string, value: unknown): string {
  const parsed = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new InvalidInputError(field, `must be an http(s) URL like http://127.0.0.1:3000, got ${String(value)}`);
  }
  return value as string;
}
