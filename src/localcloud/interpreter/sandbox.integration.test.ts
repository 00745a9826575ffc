import { Sandbox } from '@e2b/code-interpreter';
import { describe, expect, it } from 'vitest';
import { useLocalCloud, waitFor } from '../../../test/fixtures/localcloud.js';

const cloud = useLocalCloud();

/** Ids and capabilities of a process inside `sandbox`, read from its /proc status as root. */
async function credentials(sandbox: Sandbox, pid: number): Promise<Record<string, string>> {
  const { stdout } = await sandbox.commands.run(`grep -E '^(Uid|Gid|Groups|CapPrm|CapEff):' /proc/${pid}/status`, { user: 'root' });
  return Object.fromEntries(stdout.trim().split('\n').map((line) => line.split(/:\s*/) as [string, string]).map(([key, value]) => [key, value.trim().replace(/\s+/g, ' ')]));
}

/** Pids (inside the sandbox) of the processes whose command line contains `text`. */
async function pidsOf(sandbox: Sandbox, text: string): Promise<number[]> {
  // `[x]yz` matches "xyz" but not this command's own shell, whose command line holds "[x]yz".
  const { stdout } = await sandbox.commands.run(`pgrep -f '[${text[0]}]${text.slice(1)}' || true`, { user: 'root' });
  return stdout.trim().split('\n').filter(Boolean).map(Number);
}

async function withSandbox(test: (sandbox: Sandbox) => Promise<void>): Promise<void> {
  const sandbox = await Sandbox.create({ ...cloud().connection });
  try {
    await test(sandbox);
  } finally {
    await sandbox.kill();
  }
}

describe('code interpreter kernels inside a sandbox', () => {
  it('runs Python in a worker forked as user from a root zygote, which outlives every process of user and forks the next worker', async () => {
    await withSandbox(async (sandbox) => {
      const context = await sandbox.createCodeContext({ language: 'python', cwd: '/tmp' });
      const first = await sandbox.runCode("import os\nsecret = 42\nprint(os.getpid(), os.getppid())\n(os.getcwd(), os.environ['HOME'], os.environ['USER'], sorted(k for k in os.environ if k.startswith('TRADESWARM')))", { context });
      expect(first.text).toBe("('/tmp', '/home/user', 'user', [])");
      const [worker, zygote] = first.logs.stdout.join('').trim().split(' ').map(Number) as [number, number];
      expect(await credentials(sandbox, worker)).toEqual({ Uid: '1000 1000 1000 1000', Gid: '1000 1000 1000 1000', Groups: '', CapPrm: '0000000000000000', CapEff: '0000000000000000' });
      // The zygote holds only what dropping to user and signalling its workers take, and runs no user code.
      expect(await credentials(sandbox, zygote)).toMatchObject({ Uid: '0 0 0 0', CapEff: '00000000000000e0' });
      // A worker is out of reach of other processes of user until its first execution (it is not
      // dumpable, so they can neither ptrace it nor open its /proc files); then it is as a kernel started
      // as user would be.
      await sandbox.restartCodeContext(context);
      const [fresh] = (await sandbox.commands.run(`pgrep -P ${zygote}`, { user: 'root' })).stdout.trim().split('\n').map(Number) as [number];
      const attach = `python3 -c 'import ctypes; libc = ctypes.CDLL(None, use_errno=True); print(libc.ptrace(16, ${fresh}, 0, 0), ctypes.get_errno())'`;
      expect((await sandbox.commands.run(`${attach}; cat /proc/${fresh}/environ 2>&1 | sed 's/.*: //'`, { user: 'user' })).stdout).toBe('-1 1\nPermission denied\n');
      const own = await sandbox.runCode("import os\n(os.getpid(), len(open(f'/proc/{os.getpid()}/environ', 'rb').read()) > 0)", { context });
      expect(own.text).toBe(`(${fresh}, True)`);

      // What the service's scrub does to processes: the worker dies, the zygote does not.
      // SIGKILL is delivered asynchronously: the worker may still be exiting when pkill returns.
      await sandbox.commands.run('pkill -KILL -u user; true', { user: 'root' });
      await waitFor(async () => (await pidsOf(sandbox, 'python_kernel.py')).length === 1, 'the killed worker to be gone');
      expect(await pidsOf(sandbox, 'python_kernel.py')).toEqual([zygote]);
      await sandbox.restartCodeContext(context);
      const after = await sandbox.runCode("import os\nprint(os.getpid(), os.getppid())\n('secret' in globals(), os.getcwd(), os.getuid())", { context });
      const [newWorker, parent] = after.logs.stdout.join('').trim().split(' ').map(Number) as [number, number];
      expect(after.text).toBe("(False, '/tmp', 1000)");
      expect(parent).toBe(zygote);
      expect(newWorker).not.toBe(worker);
    });
  });

  it('starts JavaScript as root and drops to user on its first execution; a restart keeps a kernel that ran nothing', async () => {
    await withSandbox(async (sandbox) => {
      const context = await sandbox.createCodeContext({ language: 'javascript' });
      const [booted] = await pidsOf(sandbox, 'javascript_kernel.cjs');
      expect(booted).toBeDefined();
      expect(await credentials(sandbox, booted!)).toMatchObject({ Uid: '0 0 0 0', CapEff: '00000000000000c0' });
      // A root process that ran nothing survives a kill of every process of user, and is as fresh as a new one.
      await sandbox.commands.run('pkill -KILL -u user; true', { user: 'root' });
      await sandbox.restartCodeContext(context);
      expect(await pidsOf(sandbox, 'javascript_kernel.cjs')).toEqual([booted]);

      const first = await sandbox.runCode("globalThis.leftOver = 'ann'; setInterval(() => console.log('old timer'), 1); [process.pid, process.getuid(), process.getgid(), process.cwd(), process.env.HOME]", { context });
      expect(first.text).toBe(`[ ${booted}, 1000, 1000, '/home/user', '/home/user' ]`);
      expect(await credentials(sandbox, booted!)).toMatchObject({ Uid: '1000 1000 1000 1000', Groups: '', CapEff: '0000000000000000' });

      // It ran code: a restart replaces it with a new root kernel, with nothing of the old one.
      await sandbox.restartCodeContext(context);
      const [replaced] = await pidsOf(sandbox, 'javascript_kernel.cjs');
      expect(replaced).not.toBe(booted);
      const fresh = await sandbox.runCode('typeof leftOver', { context });
      expect(fresh.text).toBe("'undefined'");
      expect(fresh.logs.stdout).toEqual([]);
    });
  });
});
