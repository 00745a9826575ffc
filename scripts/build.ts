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
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild } from 'esbuild';

/** The package root. */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

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

  const expected = new Set<string>();
  let written = 0;
  for (const output of result.outputFiles) {
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
