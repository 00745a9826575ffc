import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE_FOLDER, PACKAGE_ROOT, buildDist } from '../scripts/build.js';

const out = mkdtempSync(join(tmpdir(), 'tradeswarm-build-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run build', () => {
  it('compiles every module of src/ but tests and test kits, and copies the other files with their mode', async () => {
    const summary = await buildDist({ outDir: out });
    const files = readdirSync(out, { recursive: true, encoding: 'utf8' });
    expect(files).toContain(join('cli', 'main.js'));
    expect(files).toContain(join('agent', 'main.js'));
    expect(files.filter((file) => /\.(test|testkit)\.|\.ts$/.test(file))).toEqual([]);
    expect(files.filter((file) => file.endsWith('.js') && !file.startsWith(`${BUNDLE_FOLDER}/`))).toHaveLength(summary.compiled);
    for (const asset of ['store/migrations/001_control_plane.sql', 'localcloud/guest/supervisor.py', 'localcloud/envd/xattrs.py', 'localcloud/kernels/python_kernel.py', 'localcloud/kernels/javascript_kernel.cjs']) {
      expect(existsSync(join(out, asset)), asset).toBe(true);
    }
    expect(statSync(join(out, 'localcloud/guest/bin/sudo')).mode & 0o111).toBe(0o111);
    expect(statSync(join(out, 'localcloud/guest/bin/python')).mode & 0o111).toBe(0o111);
    expect(summary.copied).toBe(16);
  });

  it('bundles the CLI into bundle/, where the code of each source makes its paths from where its twin of the per-file build is', () => {
    const chunks = JSON.parse(readFileSync(join(out, BUNDLE_FOLDER, 'meta.json'), 'utf8')) as Record<string, string[]>;
    const entry = Object.keys(chunks).find((file) => file.endsWith(`${BUNDLE_FOLDER}/main.js`));
    expect(entry === undefined ? [] : chunks[entry]).toContain('src/cli/main.ts');
    // Each command's module is a chunk of its own, loaded when the command runs.
    const holding = (source: string): string[] => Object.keys(chunks).filter((file) => chunks[file]?.includes(source));
    expect(holding('src/cli/serve.ts')).toHaveLength(1);
    expect(holding('src/cli/serve.ts')).not.toEqual(holding('src/cli/deployments.ts'));
    // The migrations are found beside dist/store/migrations.js, not beside the chunk.
    const [migrations] = holding('src/store/migrations.ts');
    // (meta.json names files from the package root.)
    expect(readFileSync(join(PACKAGE_ROOT, migrations ?? 'none'), 'utf8')).toContain('new URL("../store/migrations.js", import.meta.url)');
  });

  it('builds again writing only what changed, and removes what no source gives', async () => {
    writeFileSync(join(out, 'cli', 'gone.js'), 'export {};\n');
    mkdirSync(join(out, 'gone'));
    writeFileSync(join(out, 'gone', 'old.js'), 'export {};\n');
    const summary = await buildDist({ outDir: out });
    expect({ written: summary.written, removed: summary.removed }).toEqual({ written: 0, removed: 2 });
    expect(existsSync(join(out, 'cli', 'gone.js'))).toBe(false);
    expect(existsSync(join(out, 'gone'))).toBe(false);
  });

  // dist/ itself: the integration tier's global setup (test/build-dist.ts) built it from these sources.
  it('gives code run from dist/ its files next to it: the agent entry, migrations, the guest folder and the kernels', async () => {
    const dist = join(PACKAGE_ROOT, 'dist');
    const load = async <T>(module: string): Promise<T> => (await import(pathToFileURL(join(dist, module)).href)) as T;
    const { AGENT_ENTRY } = await load<{ AGENT_ENTRY: string }>('agent/index.js');
    expect(AGENT_ENTRY).toBe(join(dist, 'agent', 'main.js'));
    const { MIGRATIONS_DIR, loadMigrations } = await load<{ MIGRATIONS_DIR: string; loadMigrations: (dir: string) => ReadonlyArray<{ version: number }> }>('store/migrations.js');
    expect(MIGRATIONS_DIR).toBe(join(dist, 'store', 'migrations/'));
    expect(loadMigrations(MIGRATIONS_DIR).map((migration) => migration.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const { GUEST_HOST_DIR } = await load<{ GUEST_HOST_DIR: string }>('localcloud/isolation/launcher.js');
    expect(existsSync(join(GUEST_HOST_DIR, 'supervisor.py'))).toBe(true);
    expect(GUEST_HOST_DIR.startsWith(dist)).toBe(true);
    const { KERNELS_HOST_DIR } = await load<{ KERNELS_HOST_DIR: string }>('localcloud/interpreter/kernel.js');
    expect(existsSync(join(KERNELS_HOST_DIR, 'python_kernel.py'))).toBe(true);
    expect(KERNELS_HOST_DIR.startsWith(dist)).toBe(true);
  });
});
