// `npm run build` (run by `npm install` and `npm ci` through `prepare`): compiles src/ to JavaScript in
// dist/, which bin/tradeswarm.js runs, so a command starts without compiling TypeScript.
//
// esbuild, not tsc, emits: tsconfig.json sets isolatedModules and verbatimModuleSyntax, so each file
// compiles on its own to what tsc would emit (types erased, nothing else changed), and esbuild does all
// 200-odd files in well under a second where tsc takes about 20 s. That is what lets the integration
// tests build before they run (vitest's globalSetup), so they spawn what users run and never a stale
// dist/. Type checking stays with `tsc --noEmit` under the strict tsconfig (`npm run typecheck`, part of
// `npm test`); this build checks nothing.
//
// The layout rule, relied on wherever code makes a path from import.meta.url: dist/ mirrors src/ one
// folder below the package root (src/store/open.ts -> dist/store/open.js), and every file of src/ that
// is not TypeScript (SQL migrations, the guest supervisor and its bin/, the kernels) is copied to the
// same place in dist/ with its mode. So an asset is found next to the code that reads it, and the
// package root the same number of folders up, from src/ (tsx, tests) and from dist/ alike.
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild, type Plugin } from 'esbuild';

/** The package root. */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The CLI as one bundle, beside the per-file build: `<outDir>/bundle/main.js` and its chunks, which
 * bin/tradeswarm.js runs. Loading a command from a few files rather than a thousand (dist/'s modules and
 * node_modules' packages) takes about half the CPU time (see the README's restart section). Code
 * splitting keeps each command's modules in chunks of their own, loaded when it runs, as the per-file
 * build's dynamic imports do. `meta.json` there says which sources each chunk holds.
 */
export const BUNDLE_FOLDER = 'bundle';

/**
 * Packages the bundle imports from node_modules as they are instead of holding them: they find files of
 * their own next to their code (PGlite its WebAssembly and data, esbuild its binary, pino the workers of
 * its transports, pg and ws their optional native add-ons), or are only loaded by a command that needs
 * them at its end (ccxt, which is large).
 */
const BUNDLE_EXTERNAL = ['@electric-sql/pglite', 'esbuild', 'pino', 'thread-stream', 'pg', 'pg-native', 'bufferutil', 'utf-8-validate', 'ccxt', 'tsx'];

/** Test code and test helpers stay out of the build. */
const TEST_FILE = /\.(test|testkit)\.ts$/;

/** What a build did. */
export interface BuildSummary {
  readonly outDir: string;
  /** Files compiled from TypeScript. */
  readonly compiled: number;
  /** Other files copied. */
  readonly copied: number;
  /** Files written because they were new or changed (the others were left alone). */
  readonly written: number;
  /** Files removed from the output because their source is gone. */
  readonly removed: number;
  readonly ms: number;
}

/** Options of {@link buildDist}. */
export interface BuildOptions {
  /** @default the package root */
  root?: string;
  /** @default '<root>/dist' */
  outDir?: string;
}

/**
 * Compiles `<root>/src` into `outDir` (see the layout rule above). Each output file is written only when
 * its content changed, to a temporary name first and then renamed, so a process running from `outDir`
 * (another test run's CLI) never reads a half-written module; files whose source is gone are removed.
 */
export async function buildDist(options: BuildOptions = {}): Promise<BuildSummary> {
  const started = performance.now();
  const root = options.root ?? PACKAGE_ROOT;
  const srcDir = join(root, 'src');
  const outDir = options.outDir ?? join(root, 'dist');
  const sources = (await readdir(srcDir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
  const typescript = sources.filter((file) => file.endsWith('.ts') && !TEST_FILE.test(file));
  const assets = sources.filter((file) => !file.endsWith('.ts'));

  const result = await esbuild({
    entryPoints: typescript,
    outdir: outDir,
    outbase: srcDir,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    tsconfig: join(root, 'tsconfig.json'),
    write: false,
    logLevel: 'silent',
  });

  const bundleDir = join(outDir, BUNDLE_FOLDER);
  const bundle = await esbuild({
    entryPoints: [join(srcDir, 'cli', 'main.ts')],
    absWorkingDir: root,
    outdir: bundleDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    tsconfig: join(root, 'tsconfig.json'),
    external: BUNDLE_EXTERNAL,
    // The CommonJS packages it holds call require(): in an ES module, one made for the chunk.
    banner: { js: "import { createRequire as createBundleRequire } from 'node:module'; const require = createBundleRequire(import.meta.url);" },
    plugins: [importMetaUrlAsBuilt(srcDir, outDir, bundleDir)],
    metafile: true,
    write: false,
    logLevel: 'silent',
  });

  const expected = new Set<string>();
  let written = 0;
  const meta = join(bundleDir, 'meta.json');
  // Paths from the package root (absWorkingDir), as esbuild writes them: dist/bundle/main.js, src/cli/main.ts.
  const chunks = Object.fromEntries(Object.entries(bundle.metafile.outputs).map(([file, output]) => [file, Object.keys(output.inputs).sort()]));
  expected.add(meta);
  if (await writeIfChanged(meta, Buffer.from(`${JSON.stringify(chunks, null, 1)}\n`))) written++;
  for (const output of [...result.outputFiles, ...bundle.outputFiles]) {
    expected.add(output.path);
    if (await writeIfChanged(output.path, output.contents)) written++;
  }
  for (const asset of assets) {
    const target = join(outDir, relative(srcDir, asset));
    expected.add(target);
    if (await copyIfChanged(asset, target)) written++;
  }
  const removed = await removeOthers(outDir, expected);
  return { outDir, compiled: typescript.length, copied: assets.length, written, removed, ms: performance.now() - started };
}

/**
 * In the bundle, `import.meta.url` of a source file is where its twin of the per-file build is
 * (src/store/migrations.ts: `<outDir>/store/migrations.js`), not the chunk's, so the paths code makes
 * from it (SQL migrations, the guest, kernels, worker threads) are those of the layout rule above.
 */
function importMetaUrlAsBuilt(srcDir: string, outDir: string, bundleDir: string): Plugin {
  return {
    name: 'import-meta-url-as-built',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (!args.path.startsWith(`${srcDir}${sep}`)) return undefined;
        const source = await readFile(args.path, 'utf8');
        if (!source.includes('import.meta.url')) return undefined;
        const twin = relative(bundleDir, join(outDir, relative(srcDir, args.path))).replace(/\.ts$/, '.js').split(sep).join('/');
        return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(twin)}, import.meta.url).href`), loader: 'ts' };
      });
    },
  };
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function readOrNothing(file: string): Promise<Buffer | undefined> {
  return readFile(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
}

async function writeIfChanged(file: string, contents: Uint8Array): Promise<boolean> {
  const existing = await readOrNothing(file);
  if (existing !== undefined && digest(existing) === digest(contents)) return false;
  await mkdir(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, contents);
  await rename(temporary, file);
  return true;
}

async function copyIfChanged(source: string, target: string): Promise<boolean> {
  const [contents, existing, sourceStat] = await Promise.all([readFile(source), readOrNothing(target), stat(source)]);
  if (existing !== undefined && digest(existing) === digest(contents) && (await stat(target)).mode === sourceStat.mode) return false;
  await mkdir(dirname(target), { recursive: true });
  const temporary = `${target}.${process.pid}.tmp`;
  await copyFile(source, temporary);
  // The guest's bin/sudo runs inside sandboxes: it must stay executable.
  await chmod(temporary, sourceStat.mode);
  await rename(temporary, target);
  return true;
}

/** A file another build that is still running is writing (`<file>.<pid>.tmp`); a dead build's are removed. */
function writtenByAnotherBuild(file: string): boolean {
  const pid = /\.(\d+)\.tmp$/.exec(file)?.[1];
  if (pid === undefined || Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes the files under `dir` that are not `keep` (but for another running build's temporary files), then empty folders. */
async function removeOthers(dir: string, keep: ReadonlySet<string>): Promise<number> {
  let removed = 0;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    const file = join(entry.parentPath, entry.name);
    if (entry.isDirectory() || keep.has(file) || writtenByAnotherBuild(file)) continue;
    await rm(file, { force: true });
    removed++;
  }
  const folders = entries.filter((entry) => entry.isDirectory()).map((entry) => join(entry.parentPath, entry.name));
  // Deepest first, so a folder emptied of empty folders goes too; a folder with files stays (ENOTEMPTY).
  for (const folder of folders.sort((a, b) => b.length - a.length)) {
    await rmdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY') throw error;
    });
  }
  return removed;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const summary = await buildDist();
  process.stdout.write(
    `built ${relative(process.cwd(), summary.outDir) || '.'}: ${summary.compiled} modules compiled, ${summary.copied} other files copied (${summary.written} written, ${summary.removed} removed) in ${Math.round(summary.ms)} ms\n`,
  );
}
