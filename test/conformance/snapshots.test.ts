import { describe, expect, it } from 'vitest';
import { Sandbox, SandboxError } from 'e2b';
import { useBackend } from '../fixtures/backend.js';

const backend = useBackend({ templates: [{ name: 'snapshotted', envs: { ROLE: 'from-template' } }] });

describe('snapshots and forks through the unmodified e2b SDK', () => {
  it('snapshots a sandbox\'s whole filesystem, starts independent sandboxes from it, lists and deletes it', async () => {
    const sandbox = await Sandbox.create('snapshotted', { ...backend().connection, metadata: { test: 'snapshots' } });
    const started: Sandbox[] = [];
    try {
      await sandbox.files.write('/home/user/app/state.txt', 'before the snapshot');
      await sandbox.commands.run('echo root was here > /opt/marker && mkdir -p /usr/local/extra && echo tool > /usr/local/extra/tool', { user: 'root' });
      await sandbox.files.write('/home/user/app/meta.txt', 'm', { metadata: { kept: 'yes' } });
      const name = `snap-${Date.now()}`;
      const snapshot = await sandbox.createSnapshot({ name });
      expect(snapshot.names).toEqual([name]);
      // The sandbox runs on, and its later changes are not in the snapshot.
      await sandbox.files.write('/home/user/app/state.txt', 'after the snapshot');

      const listed = (await Sandbox.listSnapshots({ ...backend().connection, name }).nextItems()).map((item) => item.snapshotId);
      expect(listed).toEqual([snapshot.snapshotId]);
      expect((await sandbox.listSnapshots().nextItems()).map((item) => item.snapshotId)).toContain(snapshot.snapshotId);
      expect(await Sandbox.listSnapshots({ ...backend().connection, name: `${name}-none` }).nextItems()).toEqual([]);

      for (let index = 0; index < 2; index++) started.push(await Sandbox.create(snapshot.snapshotId, { ...backend().connection }));
      const [first, second] = started as [Sandbox, Sandbox];
      expect(await first.files.read('/home/user/app/state.txt')).toBe('before the snapshot');
      expect((await first.commands.run('cat /opt/marker /usr/local/extra/tool; echo $ROLE')).stdout).toBe('root was here\ntool\nfrom-template\n');
      expect((await first.files.getInfo('/home/user/app/meta.txt')).metadata).toEqual({ kept: 'yes' });
      await first.files.write('/home/user/app/state.txt', 'changed in the first');
      expect(await second.files.read('/home/user/app/state.txt')).toBe('before the snapshot');
      expect(await sandbox.files.read('/home/user/app/state.txt')).toBe('after the snapshot');

      expect(await Sandbox.deleteSnapshot(snapshot.snapshotId, { ...backend().connection })).toBe(true);
      expect(await Sandbox.deleteSnapshot(snapshot.snapshotId, { ...backend().connection })).toBe(false);
      // Sandboxes made from it keep their disks.
      expect(await second.files.read('/home/user/app/state.txt')).toBe('before the snapshot');
      await expect(Sandbox.create(snapshot.snapshotId, { ...backend().connection })).rejects.toThrow(/not found/);
    } finally {
      await Promise.all([sandbox, ...started].map((each) => each.kill()));
    }
  });

  it('forks a sandbox into independent copies of its filesystem while it keeps running', async () => {
    const sandbox = await Sandbox.create('base', { ...backend().connection, metadata: { test: 'fork' }, envs: { GREETING: 'hi' } });
    const forks: Sandbox[] = [];
    try {
      await sandbox.files.write('/home/user/state.txt', 'before the fork');
      const results = await sandbox.fork({ count: 2 });
      for (const result of results) {
        expect(result).toBeInstanceOf(Sandbox);
        if (result instanceof Sandbox) forks.push(result);
      }
      expect(new Set(forks.map((fork) => fork.sandboxId)).size).toBe(2);
      expect(await sandbox.isRunning()).toBe(true);
      for (const fork of forks) {
        expect(fork.sandboxId).not.toBe(sandbox.sandboxId);
        expect(await fork.files.read('/home/user/state.txt')).toBe('before the fork');
        expect((await fork.getInfo()).metadata).toEqual({ test: 'fork' });
        expect((await fork.commands.run('echo $GREETING')).stdout).toBe('hi\n');
      }
      await forks[0]!.files.write('/home/user/state.txt', 'changed in a fork');
      expect(await sandbox.files.read('/home/user/state.txt')).toBe('before the fork');
      expect(await forks[1]!.files.read('/home/user/state.txt')).toBe('before the fork');
      await expect(Sandbox.fork(sandbox.sandboxId, { ...backend().connection, count: 0 })).rejects.toBeInstanceOf(SandboxError);
    } finally {
      await Promise.all([sandbox, ...forks].map((each) => each.kill()));
    }
  });
});
