import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TemplateDisks, type DiskTemplate } from './disk.js';

const MiB = 1024 * 1024;
let folder: string;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'tradeswarm-disk-test-'));
});
afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

describe('TemplateDisks', () => {
  it('formats one sparse image per template, once, however many sandboxes ask at the same time', async () => {
    const disks = new TemplateDisks(folder);
    const template: DiskTemplate = { name: 'agent', diskBytes: 64 * MiB, files: { 'agent.js': 'export {};' } };
    const images = await Promise.all([disks.imageOf(template), disks.imageOf(template), disks.imageOf(template)]);
    expect(new Set(images).size).toBe(1);
    const stats = statSync(images[0]);
    expect(stats.size).toBe(64 * MiB);
    expect(stats.blocks * 512).toBeLessThan(4 * MiB);
    // Another template object (a name registered again) gets an image of its own.
    expect(await disks.imageOf({ ...template })).not.toBe(images[0]);
    // The seed folders are gone; only the images stay.
    expect(readdirSync(folder).every((name) => name.endsWith('.img'))).toBe(true);
  });

  it("says so when a template's files do not fit its disk, and tries again on the next call", async () => {
    const disks = new TemplateDisks(folder);
    const template: DiskTemplate = { name: 'too-big', diskBytes: 16 * MiB, files: { 'blob.bin': randomBytes(20 * MiB) } };
    await expect(disks.imageOf(template)).rejects.toThrow("the files of template 'too-big' do not fit its disk of 16 MiB (ext4 keeps about 2% of it): raise its diskMB or give it fewer files");
    expect(readdirSync(folder)).toEqual([]);
    await expect(disks.imageOf(template)).rejects.toThrow(/do not fit/);
  });
});
