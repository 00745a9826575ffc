import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreError } from './errors.js';
import { LOCK_FILE } from './lockfile.js';
import { openStore } from './open.js';
import type { Store } from './store.js';
import { insertDeployment, storeContract } from './store.testkit.js';

const WRITER = fileURLToPath(new URL('../../test/fixtures/store-writer.ts', import.meta.url));

storeContract('PGlite in a data dir', {
  persistent: true,
  concurrentOpens: false,
  newTarget: () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tradeswarm-pglite-'));
    return Promise.resolve({ open: (options) => openStore({ dataDir, ...options }), dispose: () => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })) });
  },
});

describe('PGlite data dir lock', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  const newDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'tradeswarm-pglite-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('creates a missing data dir, holds a lock file with its pid while open, and removes it on close', async () => {
    const dataDir = join(newDir(), 'nested', 'data');
    const store = await openStore({ dataDir });
    stores.push(store);
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(true);
    await store.close();
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  });

  it('refuses a data dir another live process has open, naming the dir, the process and what to do', async () => {
    const dataDir = newDir();
    writeFileSync(join(dataDir, LOCK_FILE), `${process.ppid}\n`);
    const error = await openStore({ dataDir }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toBe(
      `the PGlite data dir ${dataDir} is in use: process ${process.ppid} has it open. PGlite serves one process at a time: stop that process, ` +
        'point this one at another dataDir, or use a PostgreSQL server (databaseUrl) to share one database',
    );
  });

  it('refuses a second open in the same process until the first is closed', async () => {
    const dataDir = newDir();
    const first = await openStore({ dataDir });
    stores.push(first);
    await expect(openStore({ dataDir })).rejects.toThrow(/is in use: this process already has it open \(close that store first\)/);
    await insertDeployment(first, 'd1');
    await first.close();
    const second = await openStore({ dataDir });
    stores.push(second);
    expect(await second.query('SELECT id FROM deployments')).toEqual([{ id: 'd1' }]);
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    const dataDir = newDir();
    writeFileSync(join(dataDir, LOCK_FILE), '2147483646\n');
    const store = await openStore({ dataDir });
    stores.push(store);
    expect(await store.query('SELECT count(*)::int AS n FROM deployments')).toEqual([{ n: 0 }]);
  });

  it('keeps every transaction whose commit returned when its process is SIGKILLed, and the data dir opens again', async () => {
    const dataDir = newDir();
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.split('\n').length > 50) resolve();
      });
      child.once('exit', () => reject(new Error(`the writer exited before it wrote 50 events: ${stderr}`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Only whole lines: an id is printed after its commit returned.
    const committed = stdout.split('\n').slice(0, -1).map(Number);
    expect(committed.length).toBeGreaterThanOrEqual(50);
    expect(readFileSync(join(dataDir, LOCK_FILE), 'utf8').trim()).toBe(String(child.pid));

    const store = await openStore({ dataDir });
    stores.push(store);
    const rows = await store.query<{ id: number }>("SELECT id FROM events WHERE deployment_id = 'kill' ORDER BY id");
    const stored = new Set(rows.map((row) => row.id));
    expect(committed.filter((id) => !stored.has(id))).toEqual([]);
    expect(rows.length).toBeGreaterThanOrEqual(committed.length);
    const [added] = await store.transaction((tx) => tx.query<{ id: number }>("INSERT INTO events (deployment_id, at_ms, kind) VALUES ('kill', 1, 'after') RETURNING id"));
    expect(added!.id).toBeGreaterThan(Math.max(...committed));
  });
});
