import { InvalidInputError } from '../core/index.js';

/** Where sandboxes run: the embedded local cloud, or E2B cloud. */
export const SANDBOX_KINDS = ['local', 'e2b'] as const;
/** One of {@link SANDBOX_KINDS}. */
export type SandboxKind = (typeof SANDBOX_KINDS)[number];

/**
 * The connection options to spread into `Sandbox.create(template, { ...connection })`. Fields left
 * out fall back to the SDK's own defaults (`E2B_API_URL` / `E2B_SANDBOX_URL` / `E2B_DOMAIN` in the
 * process environment, else E2B cloud).
 */
export interface SandboxConnection {
  readonly apiKey: string;
  readonly apiUrl?: string;
  readonly sandboxUrl?: string;
}

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
 * The SDK connection for the chosen kind of sandbox.
 * - `e2b`: `{ apiKey: env.E2B_API_KEY }`; URLs are the SDK's defaults.
 * - `local`: the given local cloud's `apiUrl`, `sandboxUrl` and `apiKey`.
 * @throws InvalidInputError naming `E2B_API_KEY` when it is missing for `e2b`, `local` when it is
 *   missing or incomplete for `local`, or `kind` when it is neither.
 */
export function resolveSandboxConnection(options: ResolveSandboxConnectionOptions): SandboxConnection {
  const { kind } = options;
  if (kind === 'e2b') {
    const apiKey = options.env.E2B_API_KEY;
    if (apiKey === undefined || apiKey.trim() === '') {
      throw new InvalidInputError(
        'E2B_API_KEY',
        'is not set, and E2B cloud sandboxes need it: export E2B_API_KEY=<your key from https://e2b.dev/dashboard>, ' +
          'or use --sandbox local to run sandboxes on this machine',
      );
    }
    return Object.freeze({ apiKey });
  }
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
