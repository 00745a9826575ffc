import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, version as esbuildVersion, type BuildFailure, type BuildOptions, type Message } from 'esbuild';
import { InvalidInputError, createLogger, errorMessage, randomId, type Logger } from '../core/index.js';
import { BundleBuildError, formatBundleMessage, type BundleMessage } from './errors.js';

/** The package root, two folders up from this file in `src/sandbox/` or, built, `dist/sandbox/` (the layout rule in scripts/build.ts). */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where bundles are cached unless `cacheDir` says otherwise. */
export const DEFAULT_BUNDLE_CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'tradeswarm', 'bundles');

/** Extensions an entry may have. */
const ENTRY_EXTENSIONS: ReadonlySet<string> = new Set(['.ts', '.mts', '.js', '.mjs']);

/** Bumped when the cache layout or the meaning of a key changes, so old entries are never read. */
const CACHE_FORMAT = 2;

/** Extension of cached bundles; `.mjs` ones are from format 1 (ES modules) and pruned like orphans. */
const BUNDLE_EXTENSION = '.cjs';
const FORMER_EXTENSIONS: readonly string[] = ['.mjs'];

/** Bundles remembered in this process. */
const MEMO_LIMIT = 32;

/** Options of {@link buildBundle}. Only `entry` is required. */
export interface BuildBundleOptions {
  /** Absolute path of the agent's entry file (`.ts`, `.mts`, `.js` or `.mjs`). */
  entry: string;
  /**
   * Folder of the on-disk cache (created when missing).
   * @default '<repo>/node_modules/.cache/tradeswarm/bundles'
   */
  cacheDir?: string;
  /**
   * Whether to look in and fill the in-process and on-disk caches. `false` always runs esbuild.
   * @default true
   */
  cache?: boolean;
  /** @default createLogger('sandbox') */
  logger?: Logger;
}

/** The complete, validated form of {@link BuildBundleOptions}. */
export interface BuildBundleConfig {
  readonly entry: string;
  readonly cacheDir: string;
  readonly cache: boolean;
  readonly logger: Logger;
}

/**
 * One self-contained CommonJS script holding the agent and everything it imports (only Node
 * built-ins are left to `require`). Run it with `node <file>.cjs`, or through the code-cache loader
 * (see `codecache.ts`), which needs CommonJS: Node 20 can give a V8 code cache to a script, not to an
 * ES module. So an entry may not use top-level `await` or `import.meta` (esbuild says so when it does).
 */
export interface AgentBundle {
  /** The JavaScript source of the bundle. */
  readonly code: string;
  /** Hex SHA-256 of `code` (UTF-8). */
  readonly sha256: string;
  /** Size of `code` in UTF-8 bytes. */
  readonly bytes: number;
  /** How long this call took: the esbuild run, or the cache check when `cached`. */
  readonly buildMs: number;
  /** Whether the bundle came from a cache (in-process or on disk) instead of esbuild. */
  readonly cached: boolean;
}

/** What the cache keeps of one build: enough to tell whether its inputs changed. */
interface CacheManifest {
  readonly format: number;
  /** SHA-256 over the build options and every input's content. */
  readonly key: string;
  readonly sha256: string;
  readonly bytes: number;
  /** Every file esbuild read (absolute path), with the SHA-256 of its content when built. */
  readonly inputs: readonly (readonly [path: string, digest: string])[];
}

interface MemoEntry {
  readonly manifest: CacheManifest;
  readonly code: string;
}

const memo = new Map<string, MemoEntry>();
const inFlight = new Map<string, Promise<AgentBundle>>();

/**
 * Validates options and fills in defaults.
 * @throws InvalidInputError naming `entry` or `cacheDir`.
 */
export function compileBuildBundleOptions(options: BuildBundleOptions): BuildBundleConfig {
  const entry = options.entry;
  if (typeof entry !== 'string' || !isAbsolute(entry)) {
    throw new InvalidInputError('entry', `must be an absolute path of the agent's entry file, got ${String(entry)}`);
  }
  if (!ENTRY_EXTENSIONS.has(extname(entry))) {
    throw new InvalidInputError('entry', `must end in ${[...ENTRY_EXTENSIONS].join(', ')}, got ${entry}`);
  }
  const cacheDir = options.cacheDir ?? DEFAULT_BUNDLE_CACHE_DIR;
  if (typeof cacheDir !== 'string' || !isAbsolute(cacheDir)) {
    throw new InvalidInputError('cacheDir', `must be an absolute folder path, got ${String(cacheDir)}`);
  }
  return Object.freeze({
    entry: resolve(entry),
    cacheDir,
    cache: options.cache ?? true,
    logger: options.logger ?? createLogger('sandbox'),
  });
}

/** The esbuild options for one entry; everything that changes the output is in here. */
function esbuildOptions(entry: string): BuildOptions & { metafile: true; write: false } {
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // `import.meta` would be an empty object in CommonJS: an error at build time, not at the agent's start.
    logOverride: { 'empty-import-meta': 'error' },
    // Less to write into every sandbox and to parse at every agent start; identifiers stay, so stack
    // traces still name functions.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    // Lets an entry outside the repository (a temporary folder) import the repository's packages.
    nodePaths: [join(REPO_ROOT, 'node_modules')],
    absWorkingDir: REPO_ROOT,
    metafile: true,
    write: false,
    logLevel: 'silent',
  };
}

/**
 * Bundles the agent at `entry` into one self-contained CommonJS script for Node 20 with esbuild (every
 * package bundled; only Node built-ins are left as imports).
 *
 * Cached: the key is the SHA-256 of the esbuild options (and esbuild's version) plus the content of
 * every file esbuild read for the last build of this entry. A call whose inputs are unchanged returns
 * the earlier bundle with `cached: true`, from memory or from `cacheDir` (a bundle read from disk is
 * checked against its recorded hash). A change that only alters module resolution without touching
 * a file that was read (a new file shadowing an import, a package.json `exports` edit) is not seen:
 * pass `cache: false` then. Concurrent calls for the same entry share one build.
 *
 * @throws InvalidInputError naming `entry` when it is not an absolute path of an existing .ts/.mts/.js/.mjs file.
 * @throws BundleBuildError with esbuild's messages (file:line:column) when the entry does not bundle.
 */
export async function buildBundle(options: BuildBundleOptions): Promise<AgentBundle> {
  const config = compileBuildBundleOptions(options);
  const entryStat = await stat(config.entry).catch(() => undefined);
  if (!entryStat?.isFile()) throw new InvalidInputError('entry', `no file at ${config.entry}: give the absolute path of the agent's entry file`);

  const slot = sha256(JSON.stringify({ format: CACHE_FORMAT, esbuild: esbuildVersion, options: esbuildOptions(config.entry) }));
  if (!config.cache) return runBuild(config, slot);
  const pending = inFlight.get(slot);
  if (pending) return pending;
  const started = performance.now();
  const promise = (async (): Promise<AgentBundle> => {
    const hit = await lookUp(config, slot);
    if (hit) {
      const bundle = { code: hit.code, sha256: hit.manifest.sha256, bytes: hit.manifest.bytes, buildMs: performance.now() - started, cached: true };
      config.logger.debug({ entry: config.entry, sha256: bundle.sha256, buildMs: Math.round(bundle.buildMs) }, 'agent bundle from cache');
      return bundle;
    }
    return runBuild(config, slot);
  })();
  inFlight.set(slot, promise);
  try {
    return await promise;
  } finally {
    inFlight.delete(slot);
  }
}

/** The remembered build of `slot`, in memory or on disk, if its inputs are unchanged. */
async function lookUp(config: BuildBundleConfig, slot: string): Promise<MemoEntry | undefined> {
  const remembered = memo.get(slot);
  // Memory and disk are written together, so when memory holds the slot the disk has nothing newer.
  if (remembered) {
    if ((await keyOf(slot, remembered.manifest.inputs.map(([path]) => path))).key === remembered.manifest.key) return remembered;
    memo.delete(slot);
    return undefined;
  }
  const fromDisk = await readDiskCache(config, slot);
  if (!fromDisk) return undefined;
  if ((await keyOf(slot, fromDisk.manifest.inputs.map(([path]) => path))).key !== fromDisk.manifest.key) return undefined;
  remember(slot, fromDisk);
  return fromDisk;
}

/** Runs esbuild, records the result in both caches (when enabled) and returns it. */
async function runBuild(config: BuildBundleConfig, slot: string): Promise<AgentBundle> {
  const started = performance.now();
  const buildOptions = esbuildOptions(config.entry);
  let result;
  try {
    result = await build(buildOptions);
  } catch (error) {
    throw new BundleBuildError(config.entry, buildMessages(error), { cause: error });
  }
  const output = result.outputFiles[0];
  if (!output) throw new BundleBuildError(config.entry, [{ text: 'esbuild produced no output file' }]);
  const code = output.text;
  const digest = sha256(code);
  const bytes = output.contents.byteLength;
  if (result.warnings.length > 0) {
    config.logger.warn({ entry: config.entry, warnings: result.warnings.map((warning) => formatBundleMessage(toBundleMessage(warning))) }, 'esbuild warnings while bundling the agent');
  }
  if (config.cache) {
    const inputs = Object.keys(result.metafile.inputs).map((path) => (isVirtualInput(path) ? path : resolve(REPO_ROOT, path)));
    const { key, digests } = await keyOf(slot, inputs);
    const entry: MemoEntry = { code, manifest: { format: CACHE_FORMAT, key, sha256: digest, bytes, inputs: inputs.map((path, index) => [path, digests[index] ?? '']) } };
    remember(slot, entry);
    await writeDiskCache(config, slot, entry).catch((error: unknown) =>
      config.logger.warn({ cacheDir: config.cacheDir, error: errorMessage(error) }, 'could not write the bundle cache; the next process will build again'),
    );
  }
  const buildMs = performance.now() - started;
  config.logger.debug({ entry: config.entry, sha256: digest, bytes, buildMs: Math.round(buildMs) }, 'agent bundle built');
  return { code, sha256: digest, bytes, buildMs, cached: false };
}

/** The cache key of `slot` with `inputs` as they are now, and each input's digest. */
async function keyOf(slot: string, inputs: readonly string[]): Promise<{ key: string; digests: string[] }> {
  const digests = await Promise.all(inputs.map((path) => digestOf(path)));
  const hash = createHash('sha256').update(slot);
  inputs.forEach((path, index) => hash.update(`\0${path}\0${digests[index] ?? ''}`));
  return { key: hash.digest('hex'), digests };
}

/** SHA-256 of a file's content, `absent` when it cannot be read, or the name itself for esbuild's virtual modules. */
async function digestOf(path: string): Promise<string> {
  if (isVirtualInput(path)) return `virtual:${path}`;
  try {
    return sha256(await readFile(path));
  } catch {
    return 'absent';
  }
}

/** esbuild names modules that are not files like `(disabled):…` or `<define:…>`. */
function isVirtualInput(path: string): boolean {
  return path.startsWith('(') || path.startsWith('<');
}

function remember(slot: string, entry: MemoEntry): void {
  memo.delete(slot);
  memo.set(slot, entry);
  while (memo.size > MEMO_LIMIT) {
    const oldest = memo.keys().next().value;
    if (oldest === undefined) break;
    memo.delete(oldest);
  }
}

/** Forgets every bundle remembered in this process (the on-disk cache stays). For tests. */
export function forgetRememberedBundles(): void {
  memo.clear();
}

async function readDiskCache(config: BuildBundleConfig, slot: string): Promise<MemoEntry | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(config.cacheDir, `${slot}.json`), 'utf8')) as CacheManifest;
    if (manifest.format !== CACHE_FORMAT || !Array.isArray(manifest.inputs)) return undefined;
    const code = await readFile(join(config.cacheDir, `${manifest.sha256}${BUNDLE_EXTENSION}`), 'utf8');
    // A truncated or edited file is a miss, not a broken agent.
    if (sha256(code) !== manifest.sha256) return undefined;
    return { manifest, code };
  } catch {
    return undefined;
  }
}

async function writeDiskCache(config: BuildBundleConfig, slot: string, entry: MemoEntry): Promise<void> {
  await mkdir(config.cacheDir, { recursive: true });
  // The code first, then the manifest that points at it; each renamed into place so readers never see half a file.
  await writeAtomically(join(config.cacheDir, `${entry.manifest.sha256}${BUNDLE_EXTENSION}`), entry.code);
  await writeAtomically(join(config.cacheDir, `${slot}.json`), `${JSON.stringify(entry.manifest)}\n`);
  await pruneDiskCache(config.cacheDir);
}

/** Bundles no manifest points at any more (superseded by a rebuild) are deleted once older than this. */
const ORPHAN_AGE_MS = 60_000;

/**
 * Deletes bundles that no manifest points at, so the cache holds one bundle per entry and options
 * rather than one per edit. A bundle younger than {@link ORPHAN_AGE_MS} is left alone: another
 * process may be between writing it and writing its manifest.
 * @param nowMs defaults to `Date.now()` on purpose: file modification times are wall-clock times, so
 *   a file's age can only be measured against the wall clock, not an injected Clock.
 */
export async function pruneDiskCache(cacheDir: string, nowMs = Date.now()): Promise<number> {
  const names = await readdir(cacheDir);
  const referenced = new Set<string>();
  for (const name of names.filter((file) => file.endsWith('.json'))) {
    try {
      const manifest = JSON.parse(await readFile(join(cacheDir, name), 'utf8')) as Partial<CacheManifest>;
      if (typeof manifest.sha256 === 'string') referenced.add(`${manifest.sha256}${BUNDLE_EXTENSION}`);
    } catch {
      // An unreadable manifest points at nothing; its slot is rebuilt on the next miss.
    }
  }
  let deleted = 0;
  for (const name of names.filter((file) => [BUNDLE_EXTENSION, ...FORMER_EXTENSIONS].some((extension) => file.endsWith(extension)) && !referenced.has(file))) {
    const path = join(cacheDir, name);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined || nowMs - info.mtimeMs < ORPHAN_AGE_MS) continue;
    await unlink(path).then(
      () => (deleted += 1),
      () => undefined,
    );
  }
  return deleted;
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomId(8)}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, path);
}

function buildMessages(error: unknown): BundleMessage[] {
  const errors = (error as Partial<BuildFailure> | undefined)?.errors;
  if (Array.isArray(errors) && errors.length > 0) return errors.map(toBundleMessage);
  return [{ text: errorMessage(error) }];
}

function toBundleMessage(message: Message): BundleMessage {
  const location = message.location;
  if (!location) return { text: message.text };
  return {
    text: message.text,
    file: resolve(REPO_ROOT, location.file),
    line: location.line,
    column: location.column,
    lineText: location.lineText,
  };
}

function sha256(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}
