import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, silentLogger } from '../../core/index.js';
import { compileTemplate } from '../templates/index.js';
import { PausedSandboxes } from './paused.js';
import { LocalSandbox, type SandboxSettings } from './sandbox.js';
import type { Snapshot } from './snapshots.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function folder(): string {
  const made = mkdtempSync(join(tmpdir(), 'tradeswarm-paused-'));
  folders.push(made);
  return made;
}

const settings: SandboxSettings = {
  id: 'abc123',
  template: compileTemplate({ name: 'base', envs: { ROLE: 'agent' } }),
  templateId: 'base',
  clientId: 'localcloud',
  metadata: { owner: 'me' },
  envVars: { FOO: 'bar' },
  allowInternetAccess: true,
  network: 'routed',
  egress: { allowOut: ['1.1.1.1/32'], denyOut: ['0.0.0.0/0'], allowHosts: ['api.example.com'], rules: { 'api.example.com': [{ transform: { headers: { Authorization: 'Bearer x' } } }, {}] } },
  autoPause: true,
  autoPauseKeepsMemory: false,
  autoResume: true,
  publicTraffic: false,
  maskRequestHost: 'inside:${PORT}',
  accessToken: 'access',
  trafficAccessToken: 'traffic',
  startedAtMs: 1_000,
};

/** A sandbox paused without its memory, and the copy of its disk its pause took (in `scratch`). */
function pausedWithDisk(scratch: string): { sandbox: LocalSandbox; disk: Snapshot } {
  const sandbox = new LocalSandbox(settings, 9_000, undefined, new ManualClock(5_000));
  const image = join(scratch, 'snap_x.img');
  writeFileSync(image, 'the disk');
  return { sandbox, disk: { id: 'snap_x', names: [], sandboxId: sandbox.id, template: settings.template, templateId: 'base', image, createdAtMs: 5_000, listed: false } };
}

describe('paused sandboxes kept in a data folder', () => {
  it('keeps a paused sandbox with every setting and its disk, for the server\'s user alone, and gives it back as it was', () => {
    const dir = join(folder(), 'paused');
    const { sandbox, disk } = pausedWithDisk(folder());
    expect(sandbox.state).toBe('paused');
    const store = new PausedSandboxes(dir, silentLogger);
    const kept = store.keep(sandbox, disk, 5_000);
    expect(kept.image).toBe(join(dir, 'abc123.img'));
    expect(readdirSync(dir).sort()).toEqual(['abc123.img', 'abc123.json']);
    expect(statSync(join(dir, 'abc123.json')).mode & 0o077).toBe(0);
    const [loaded, ...rest] = new PausedSandboxes(dir, silentLogger).load();
    expect(rest).toEqual([]);
    const { files: _files, ...template } = settings.template;
    expect(loaded?.settings).toEqual({ ...settings, template: { ...template, files: {} } });
    expect(loaded?.endAtMs).toBe(9_000);
    expect(loaded?.disk).toMatchObject({ id: 'snap_x', image: join(dir, 'abc123.img'), sandboxId: 'abc123', listed: false });
    store.forget('abc123');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('removes what a server killed as it kept one left (an image without its record, a record half written), and leaves a damaged record, saying so', () => {
    const dir = folder();
    writeFileSync(join(dir, 'orphan.img'), 'a disk whose record never came');
    writeFileSync(join(dir, 'half.json.part'), '{"version": 1');
    writeFileSync(join(dir, 'damaged.json'), '{"version": 1, "id": ');
    const warn = vi.fn();
    const logger = { ...silentLogger, warn } as unknown as typeof silentLogger;
    expect(new PausedSandboxes(dir, logger).load()).toEqual([]);
    expect(readdirSync(dir)).toEqual(['damaged.json']);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ path: join(dir, 'damaged.json') }), expect.stringMatching(/could not be read; it is not listed/));
  });
});
