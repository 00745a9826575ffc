import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { CommandExitError, Sandbox } from 'e2b';
import { randomId, silentLogger } from '../../src/core/index.js';
import { startLocalCloud } from '../../src/localcloud/index.js';
import { describeLocal, useBackend } from '../fixtures/backend.js';
import { loopBackingFiles, waitFor } from '../fixtures/localcloud.js';
import { isAlive } from '../fixtures/processes.js';

/** Why none of this runs on E2B cloud: it looks at the sandboxes from the host they run on. */
const LOCAL_ONLY = "isolation internals: it checks the local cloud's namespaces, cgroups and host processes from this machine";
const backend = useBackend({ templates: [{ name: 'tiny', memoryMB: 64, maxProcesses: 48 }, { name: 'onecore', cpuCount: 1 }] });
const cloud = () => backend().local;

async function exitCodeOf(sandbox: Sandbox, command: string, user: 'user' | 'root' = 'user'): Promise<{ exitCode: number; stderr: string }> {
  try {
    const result = await sandbox.commands.run(command, { user });
    return { exitCode: result.exitCode, stderr: result.stderr };
  } catch (error) {
    if (error instanceof CommandExitError) return { exitCode: error.exitCode, stderr: error.stderr };
    throw error;
  }
}

describeLocal('isolation: escapes that must fail', LOCAL_ONLY, () => {
  it('writes anywhere in its own root as root, never on the host nor in another sandbox; user keeps ordinary permissions', async () => {
    // Host files of the test's own, public, under /usr and /etc: changed, made private and removed inside a sandbox.
    const suffix = randomId(8).toLowerCase();
    const hostFiles = {
      usrChanged: `/usr/local/share/tradeswarm-test-${suffix}-changed`,
      usrRemoved: `/usr/local/share/tradeswarm-test-${suffix}-removed`,
      etcChanged: `/etc/tradeswarm-test-${suffix}-changed.conf`,
      etcRemoved: `/etc/tradeswarm-test-${suffix}-removed.conf`,
    };
    for (const path of Object.values(hostFiles)) writeFileSync(path, `host ${basename(path)}\n`, { mode: 0o644 });
    const made = [`/escaped-${suffix}`, `/opt/tradeswarm-test-${suffix}/file`, `/usr/bin/tradeswarm-test-${suffix}`, `/etc/tradeswarm-test-${suffix}-new.conf`, `/root/tradeswarm-test-${suffix}`];
    const [sandbox, other] = await Promise.all([Sandbox.create('base', cloud().connection), Sandbox.create('base', cloud().connection)]);
    try {
      const script = [
        ...made.map((path) => `mkdir -p ${dirname(path)} && echo made > ${path}`),
        `echo changed >> ${hostFiles.usrChanged} && chmod 600 ${hostFiles.usrChanged}`,
        `echo changed >> ${hostFiles.etcChanged} && chmod 600 ${hostFiles.etcChanged}`,
        `rm ${hostFiles.usrRemoved} ${hostFiles.etcRemoved}`,
      ].join(' && ');
      expect(await exitCodeOf(sandbox, script, 'root')).toEqual({ exitCode: 0, stderr: '' });
      const seenBy = async (box: Sandbox): Promise<string> =>
        (await box.commands.run(`for f in ${[...Object.values(hostFiles), ...made].join(' ')}; do if [ -e $f ]; then stat -c "%a $f" $f; cat $f; else echo "missing $f"; fi; done`, { user: 'root' })).stdout;
      const inside = await seenBy(sandbox);
      expect(inside).toContain(`600 ${hostFiles.usrChanged}\nhost ${basename(hostFiles.usrChanged)}\nchanged\n`);
      expect(inside).toContain(`600 ${hostFiles.etcChanged}\nhost ${basename(hostFiles.etcChanged)}\nchanged\n`);
      expect(inside).toContain(`missing ${hostFiles.usrRemoved}\n`);
      expect(inside).toContain(`missing ${hostFiles.etcRemoved}\n`);
      for (const path of made) expect(inside).toContain(`${path}\nmade\n`);
      // The host and the other sandbox see the host's files as they were, and nothing the sandbox made.
      const untouched = [
        ...Object.values(hostFiles).map((path) => `644 ${path}\nhost ${basename(path)}\n`),
        ...made.map((path) => `missing ${path}\n`),
      ].join('');
      expect(await seenBy(other)).toBe(untouched);
      for (const path of Object.values(hostFiles)) {
        expect(readFileSync(path, 'utf8')).toBe(`host ${basename(path)}\n`);
        expect(statSync(path).mode & 0o777).toBe(0o644);
      }
      for (const path of made) expect(existsSync(path), path).toBe(false);

      // user: the ordinary permissions of a Linux user, root's through sudo.
      for (const target of ['/usr/bin/by-user', '/etc/by-user', '/by-user', hostFiles.etcChanged, '/etc/passwd']) {
        const { exitCode, stderr } = await exitCodeOf(sandbox, `echo x >> ${target}`);
        expect(exitCode, `user writing ${target}`).not.toBe(0);
        expect(stderr).toMatch(/Permission denied/);
      }
      expect((await sandbox.commands.run('sudo sh -c "echo by-sudo > /usr/bin/by-sudo" && cat /usr/bin/by-sudo')).stdout).toBe('by-sudo\n');
      expect((await sandbox.commands.run('echo ok > /home/user/a && echo ok > /tmp/b && echo ok > /var/tmp/c && cat /home/user/a /tmp/b /var/tmp/c')).stdout).toBe('ok\nok\nok\n');
      // What stays closed to root too: the local cloud's own folders, /proc/sys, remounting.
      for (const target of ['/opt/tradeswarm/kernels/escaped', '/opt/tradeswarm/guest/escaped']) {
        const { exitCode, stderr } = await exitCodeOf(sandbox, `echo x > ${target}`, 'root');
        expect(exitCode, `root writing ${target}`).not.toBe(0);
        expect(stderr).toMatch(/Read-only file system/);
      }
      expect((await exitCodeOf(sandbox, 'mount -o remount,ro /', 'root')).exitCode).not.toBe(0);
      expect((await exitCodeOf(sandbox, 'echo 1 > /proc/sys/vm/drop_caches', 'root')).exitCode).not.toBe(0);
    } finally {
      await Promise.all([sandbox.kill(), other.kill()]);
      for (const path of Object.values(hostFiles)) rmSync(path, { force: true });
    }
  });

  it('runs commands without capabilities that reach the host, and none can be gained', async () => {
    const sandbox = await Sandbox.create('base', cloud().connection);
    try {
      const status = async (user: 'user' | 'root'): Promise<Record<string, string>> =>
        Object.fromEntries(
          (await sandbox.commands.run('grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs):" /proc/self/status', { user })).stdout
            .trim()
            .split('\n')
            .map((line) => line.split(/:\s+/) as [string, string]),
        );
      // Only kill, setgid and setuid (bits 5-7) exist at all, and only root holds them.
      expect(await status('root')).toEqual({ CapPrm: '00000000000000e0', CapEff: '00000000000000e0', CapBnd: '00000000000000e0', NoNewPrivs: '1' });
      expect(await status('user')).toEqual({ CapPrm: '0000000000000000', CapEff: '0000000000000000', CapBnd: '00000000000000e0', NoNewPrivs: '1' });
    } finally {
      await sandbox.kill();
    }
  });

  it('sees and signals only its own processes', async () => {
    const [a, b] = await Promise.all([Sandbox.create('base', cloud().connection), Sandbox.create('base', cloud().connection)]);
    try {
      const marker = await a.commands.run('exec sleep 4242', { background: true });
      const seenByB = (await b.commands.run('cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "')).stdout;
      expect(seenByB).not.toContain('4242');
      expect(seenByB).not.toContain('vitest');
      const seenByA = (await a.commands.run('cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "')).stdout;
      expect(seenByA).toContain('sleep 4242');
      // The host's processes (this test runner) do not exist in the sandbox.
      expect((await exitCodeOf(b, `kill -0 ${process.pid}`)).exitCode).not.toBe(0);
      expect((await exitCodeOf(b, `kill -9 ${marker.pid}; sleep 0.05`, 'root')).exitCode).toBeGreaterThanOrEqual(0);
      expect((await a.commands.list()).map((process) => process.pid)).toContain(marker.pid);
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });

  it('shares no System V IPC objects with other sandboxes or the host', async () => {
    const [a, b] = await Promise.all([Sandbox.create('base', cloud().connection), Sandbox.create('base', cloud().connection)]);
    try {
      const made = await a.commands.run('ipcmk -M 4096 >/dev/null && ipcmk -Q >/dev/null && ipcs -m -q');
      // The keys of the segment and the queue `user` made (first column of their lines).
      const keys = made.stdout.split('\n').filter((line) => /\suser\s/.test(line)).map((line) => line.split(/\s+/)[0]!);
      expect(keys, made.stdout).toHaveLength(2);
      const host = spawn('ipcs', ['-m', '-q']);
      let seenByHost = '';
      host.stdout.on('data', (chunk: Buffer) => (seenByHost += chunk.toString()));
      await once(host, 'exit');
      const seenByB = (await b.commands.run('ipcs -m -q')).stdout;
      for (const key of keys) {
        expect(seenByB).not.toContain(key);
        expect(seenByHost).not.toContain(key);
      }
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });

  it('has no network at all when internet access is off', async () => {
    const offline = await Sandbox.create('base', { ...cloud().connection, allowInternetAccess: false });
    const online = await Sandbox.create('base', cloud().connection);
    const probe = `python3 -c "import socket; socket.create_connection(('127.0.0.1', ${cloud().port}), timeout=2); print('connected')"`;
    try {
      expect((await online.commands.run(probe)).stdout).toBe('connected\n');
      const { exitCode, stderr } = await exitCodeOf(offline, probe);
      expect(exitCode).not.toBe(0);
      expect(stderr).toMatch(/Connection refused|Network is unreachable/);
      expect((await offline.commands.run('cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "')).stdout).toBe('lo\n');
    } finally {
      await Promise.all([offline.kill(), online.kill()]);
    }
  });

  it('stops a fork bomb at the process limit while other sandboxes stay healthy', async () => {
    const bomb = await Sandbox.create('tiny', cloud().connection);
    const neighbour = await Sandbox.create('base', cloud().connection);
    try {
      const handle = await bomb.commands.run('bomb() { bomb | bomb & }; bomb; sleep 1; echo survived', { background: true });
      await waitFor(() => cloud().sandboxes.get(bomb.sandboxId).cgroups.pids().length >= 40, 'the fork bomb to reach the limit');
      expect(cloud().sandboxes.get(bomb.sandboxId).cgroups.pids().length).toBeLessThanOrEqual(48);
      expect((await neighbour.commands.run('echo healthy')).stdout).toBe('healthy\n');
      await handle.kill();
    } finally {
      await Promise.all([bomb.kill(), neighbour.kill()]);
    }
  });

  it('stops a memory hog at the memory limit while other sandboxes stay healthy', async () => {
    const hog = await Sandbox.create('tiny', cloud().connection);
    const neighbour = await Sandbox.create('base', cloud().connection);
    try {
      const { exitCode } = await exitCodeOf(hog, 'python3 -c "chunks = [bytearray(16 * 1024 * 1024) for _ in range(32)]; print(len(chunks))"');
      expect(exitCode).not.toBe(0);
      expect(cloud().sandboxes.get(hog.sandboxId).cgroups.oomKillCount()).toBe(1);
      expect((await hog.commands.run('echo still-usable')).stdout).toBe('still-usable\n');
      expect((await neighbour.commands.run('python3 -c "x = bytearray(128 * 1024 * 1024); print(len(x))"')).stdout).toBe('134217728\n');
    } finally {
      await Promise.all([hog.kill(), neighbour.kill()]);
    }
  });

  it("holds a sandbox to its template's cpuCount: two busy loops in a one-core sandbox get one core", async () => {
    const sandbox = await Sandbox.create('onecore', cloud().connection);
    try {
      const groups = cloud().sandboxes.get(sandbox.sandboxId).cgroups;
      expect(groups.cpuQuotaCores()).toBe(1);
      const before = groups.cpuUsageNs() as number;
      const started = performance.now();
      await sandbox.commands.run(`sh -c 'for i in 1 2; do timeout 1.5 python3 -c "while 1: pass" & done; wait'`);
      const wallNs = (performance.now() - started) * 1e6;
      const usedNs = (groups.cpuUsageNs() as number) - before;
      // Two busy loops would take up to two cores; the quota holds them to one (plus a period's slack).
      // Only the bound is checked: how much of a core they get below it depends on the machine's load.
      expect(usedNs / wallNs).toBeLessThan(1.15);
      expect(usedNs).toBeGreaterThan(0);
    } finally {
      await sandbox.kill();
    }
  });

  it('kills every process of a sandbox when it is killed', async () => {
    const sandbox = await Sandbox.create('base', cloud().connection);
    await sandbox.commands.run('nohup sleep 300 >/dev/null 2>&1 & setsid sleep 301 >/dev/null 2>&1 &');
    const local = cloud().sandboxes.get(sandbox.sandboxId);
    const hostPids = local.cgroups.pids();
    expect(hostPids.length).toBeGreaterThanOrEqual(3);
    await sandbox.kill();
    await waitFor(() => hostPids.every((pid) => !isAlive(pid)), 'every process of the killed sandbox to be gone');
    expect(existsSync(local.dirs.diskImage)).toBe(false);
  });
});

describeLocal("isolation: the host's secrets in /etc", LOCAL_ONLY, () => {
  it('are empty or refused for root and user, even once replaced; the rest of /etc reads normally', async () => {
    // Host secrets as the test's own: an ssh-host-key-like file (mode 600) and a private directory (700).
    const secretDir = existsSync('/etc/ssh') ? '/etc/ssh' : '/etc';
    const suffix = randomId(8).toLowerCase();
    const key = join(secretDir, `ssh_host_tradeswarm_test_${suffix}_key`);
    const privateDir = join(secretDir, `tradeswarm-test-${suffix}.d`);
    writeFileSync(key, `host private key ${suffix}\n`, { mode: 0o600 });
    mkdirSync(privateDir, { mode: 0o700 });
    writeFileSync(join(privateDir, 'token'), `host token ${suffix}\n`, { mode: 0o644 });
    const hostFiles = ['/etc/shadow', '/etc/gshadow', '/etc/shadow-', '/etc/gshadow-'].filter((path) => existsSync(path));
    const before = new Map(hostFiles.map((path) => [path, { content: readFileSync(path, 'utf8'), mode: statSync(path).mode }]));
    expect(before.get('/etc/shadow')?.content).toMatch(/^root:/);
    // A cloud of its own, without a warm pool: its sandbox is assembled after the secrets exist.
    const fresh = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 0 });
    const sandbox = await Sandbox.create('base', fresh.connection);
    try {
      const readAs = async (user: 'user' | 'root', path: string): Promise<{ exitCode: number; stdout: string; stderr: string }> => {
        try {
          const result = await sandbox.commands.run(`cat ${path}`, { user });
          return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
        } catch (error) {
          if (error instanceof CommandExitError) return { exitCode: error.exitCode, stdout: error.stdout, stderr: error.stderr };
          throw error;
        }
      };
      // Compares lengths, not contents: a failure must not print the host's secrets into the test log.
      const expectHidden = async (path: string): Promise<void> => {
        // root owns the host's files, so without the masking it would read them all.
        const asRoot = await readAs('root', path);
        expect({ exitCode: asRoot.exitCode, bytesRead: asRoot.stdout.length, stderr: asRoot.stderr }, `root reading ${path}`).toEqual({ exitCode: 0, bytesRead: 0, stderr: '' });
        const asUser = await readAs('user', path);
        expect(asUser.stdout.length, `user reading ${path}`).toBe(0);
        if (asUser.exitCode !== 0) expect(asUser.stderr).toMatch(/Permission denied/);
      };
      for (const path of [...hostFiles, key]) await expectHidden(path);
      // A directory "other" may not search is there, and empty.
      expect((await sandbox.commands.run(`ls -A ${privateDir}`, { user: 'root' })).stdout).toBe('');
      const token = await readAs('root', join(privateDir, 'token'));
      expect({ exitCode: token.exitCode, bytesRead: token.stdout.length }).toEqual({ exitCode: 1, bytesRead: 0 });
      expect(token.stderr).toMatch(/No such file or directory/);
      expect((await sandbox.files.read('/etc/shadow', { user: 'root' })).length).toBe(0);
      expect((await sandbox.files.read(key, { user: 'root' })).length).toBe(0);

      // Replaced the way passwd and ssh-keygen replace a file (a new one renamed over it): still hidden.
      writeFileSync(`${key}.new`, `rotated host private key ${suffix}\n`, { mode: 0o600 });
      renameSync(`${key}.new`, key);
      await expectHidden(key);

      // Removed or changed by the sandbox's root, a stand-in hides the host's file all the same: its /etc
      // is an overlay whose lower layers (the stand-ins, then the host's /etc) it cannot reach.
      await sandbox.commands.run(`rm -f /etc/shadow && chmod 644 ${key} && echo root-written >> ${key}`, { user: 'root' });
      const removed = await readAs('root', '/etc/shadow');
      expect({ exitCode: removed.exitCode, bytesRead: removed.stdout.length }).toEqual({ exitCode: 1, bytesRead: 0 });
      expect((await readAs('root', key)).stdout).toBe('root-written\n');
      expect((await readAs('root', '/proc/1/root/etc/shadow')).stdout.length).toBe(0);
      expect((await sandbox.commands.run('grep -c " /etc " /proc/self/mountinfo; grep " /etc " /proc/self/mountinfo | grep -c "lowerdir=/proc/self/fd/"')).stdout).toBe('1\n1\n');

      // The sandbox's own files, and the host's public ones, read as usual; its root changes its own copy.
      expect((await sandbox.commands.run('cat /etc/passwd')).stdout).toMatch(/^user:x:1000:1000:/m);
      expect((await sandbox.commands.run('cat /etc/hosts')).stdout).toMatch(/^127\.0\.0\.1\tlocalhost /);
      expect((await sandbox.commands.run('cat /etc/os-release')).stdout).toBe(readFileSync('/etc/os-release', 'utf8'));
      await sandbox.commands.run('echo 10.0.0.1 mine >> /etc/hosts', { user: 'root' });
      expect((await sandbox.commands.run('tail -n 1 /etc/hosts')).stdout).toBe('10.0.0.1 mine\n');
      expect(readFileSync('/etc/hosts', 'utf8')).not.toContain('10.0.0.1 mine');
    } finally {
      await sandbox.kill();
      await fresh.close();
      rmSync(key, { force: true });
      rmSync(privateDir, { recursive: true, force: true });
    }
    for (const [path, { content, mode }] of before) {
      expect(readFileSync(path, 'utf8') === content, `${path} on the host is unchanged`).toBe(true);
      expect(statSync(path).mode).toBe(mode);
    }
  });
});

/** A local cloud in a process of its own (test/fixtures/cloud-process.ts) with one sandbox. */
interface CloudProcess {
  readonly child: ChildProcessByStdio<Writable, Readable, null>;
  /** Host pids of the sandbox: its init, its supervisor and a `sleep`. */
  readonly pids: number[];
  readonly dataDir: string;
}

async function startCloudProcess(): Promise<CloudProcess> {
  const script = fileURLToPath(new URL('../fixtures/cloud-process.ts', import.meta.url));
  // stdin is a pipe the fixture watches: if this test dies, the fixture server exits too.
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitFor(() => output.includes('\n'), 'the child server to report its sandbox', 20_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { child, ...(JSON.parse(output.split('\n')[0]!) as { pids: number[]; dataDir: string }) };
}

describeLocal('isolation: nothing outlives the server', LOCAL_ONLY, () => {
  it("removes a crashed server's temporary data folder at the next start, and leaves a running server's alone", async () => {
    const [crashed, running] = await Promise.all([startCloudProcess(), startCloudProcess()]);
    try {
      const crashedRoot = dirname(crashed.dataDir);
      const runningRoot = dirname(running.dataDir);
      expect(basename(crashedRoot)).toMatch(/^tradeswarm-localcloud-/);
      expect(existsSync(crashedRoot) && existsSync(runningRoot)).toBe(true);
      const exited = once(crashed.child, 'exit');
      crashed.child.kill('SIGKILL');
      await exited;
      await waitFor(() => crashed.pids.every((pid) => !isAlive(pid)), 'the crashed server\'s sandbox to die with it', 10_000);

      // (A server started meanwhile by another test file may be the one that removes it.)
      const next = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 0 });
      await next.close();
      expect(existsSync(crashedRoot)).toBe(false);
      expect(existsSync(running.dataDir)).toBe(true);
      expect(running.pids.every(isAlive)).toBe(true);

      // Stopped cleanly, a server removes its own folder.
      const stopped = once(running.child, 'exit');
      running.child.stdin.end();
      await stopped;
      expect(existsSync(runningRoot)).toBe(false);
    } finally {
      crashed.child.kill('SIGKILL');
      running.child.kill('SIGKILL');
    }
  });

  it('leaves no process behind when the server process is killed with SIGKILL', async () => {
    const { child, pids, dataDir } = await startCloudProcess();
    try {
      const instanceGroup = `/sys/fs/cgroup/pids/tradeswarm/${basename(dataDir)}`;
      expect(existsSync(instanceGroup)).toBe(true);
      expect(pids).toHaveLength(3);
      expect(pids.every(isAlive)).toBe(true);
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      // Until it is reaped, the dead server is a zombie that still answers kill(pid, 0).
      await exited;
      await waitFor(() => pids.every((pid) => !isAlive(pid)), 'the sandbox processes to die with the server', 10_000);
      // Their disks were mounted in their own mount namespaces only, which are gone with them.
      await waitFor(() => !loopBackingFiles().some((file) => file.startsWith(dataDir)), 'the sandbox disks\' loop devices to detach', 10_000);
      // What the dead server left (its cgroups and sandbox folders) is cleaned by the next server to start.
      const next = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0 });
      await next.close();
      expect(existsSync(instanceGroup)).toBe(false);
    } finally {
      // Normally already dead; this only matters when an assertion failed before the kill.
      child.kill('SIGKILL');
    }
  });
});
