import { CommandExitError, Sandbox } from '@e2b/code-interpreter';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { useLocalCloud } from '../../test/fixtures/localcloud.js';
import { SandboxTidyError } from './errors.js';
import { scrubCommand, scrubSandbox, tidyCode, tidySandbox } from './hygiene.js';

const cloud = useLocalCloud();

async function withSandbox(test: (sandbox: Sandbox) => Promise<void>): Promise<void> {
  const sandbox = await Sandbox.create({ ...cloud().connection });
  try {
    await test(sandbox);
  } finally {
    await sandbox.kill();
  }
}

/** Creates the POSIX message queue /left (it outlives every process, like a file), through libc. */
const MAKE_QUEUE = `python3 -c "import ctypes, os; assert ctypes.CDLL('librt.so.1').mq_open(b'/left', os.O_CREAT | os.O_RDWR, 0o600, None) >= 0"`;

/** What a caller could leave behind: files everywhere user code may write, and processes that try to outlive it. */
const LEFTOVERS = [
  'echo kept > /home/user/.keep',
  'echo secret > /home/user/notes.txt && echo secret > /home/user/.hidden',
  // A directory its owner cannot write into, holding a file: removal must make it writable first.
  'mkdir -p /home/user/locked/inner && echo x > /home/user/locked/inner/f && chmod 500 /home/user/locked/inner /home/user/locked',
  'echo t > /tmp/t && mkdir /tmp/dir && echo y > /tmp/dir/y && echo s > /dev/shm/s && ln -s /etc/passwd /tmp/link',
  'nohup sleep 301 >/dev/null 2>&1 &',
  'setsid sleep 302 >/dev/null 2>&1 < /dev/null &',
  // A daemon: forked twice, in its own session, reparented to pid 1.
  `python3 -c 'import os, time\nif os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\ntime.sleep(303)' >/dev/null 2>&1 &`,
  // System V shared memory, a message queue and a semaphore set: they outlive every process.
  'ipcmk -M 4096 >/dev/null && ipcmk -Q >/dev/null && ipcmk -S 1 >/dev/null',
  MAKE_QUEUE,
  // One that ignores the polite signals.
  `python3 -c 'import signal, time\nfor s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\ntime.sleep(304)' >/dev/null 2>&1 &`,
].join('\n');

describe('scrubSandbox on the local cloud', () => {
  it('kills every process of user, removes everything in /home/user, /tmp and /dev/shm but keep, and leaves root alone', async () => {
    await withSandbox(async (sandbox) => {
      const context = await sandbox.createCodeContext({ language: 'python' });
      await sandbox.runCode("import subprocess\nsubprocess.Popen(['sleep', '305'], start_new_session=True)\nopen('/tmp/from-python', 'w').write('x')", { context });
      await sandbox.commands.run(LEFTOVERS, { user: 'user' });
      await sandbox.commands.run('echo r > /tmp/root-file', { user: 'root' });
      expect((await sandbox.commands.run('pgrep -c -u user', { user: 'root' })).stdout.trim()).not.toBe('0');
      expect((await sandbox.commands.run('ls /dev/mqueue')).stdout).toBe('left\n');
      // Three header lines and one object in each table.
      expect((await sandbox.commands.run('cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem | wc -l')).stdout.trim()).toBe('6');

      await scrubSandbox(sandbox, { keep: ['/home/user/.keep'] });

      const after = await sandbox.commands.run('ls -A /home/user /tmp /dev/shm /dev/mqueue; echo "user processes: $(pgrep -c -u user)"; cat /home/user/.keep', { user: 'root' }).catch((error: unknown) => {
        // pgrep -c exits 1 when it counts none; the output is what matters.
        if (error instanceof CommandExitError) return { stdout: error.stdout };
        throw error;
      });
      expect(after.stdout).toBe('/dev/mqueue:\n\n/dev/shm:\n\n/home/user:\n.keep\n\n/tmp:\nuser processes: 0\nkept\n');
      // Only the three header lines: no System V IPC object is left.
      expect((await sandbox.commands.run('cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem | wc -l')).stdout.trim()).toBe('3');
      // The interpreter's root zygote is not a process of user: it is still there and forks a fresh worker.
      await sandbox.restartCodeContext(context);
      expect((await sandbox.runCode("import os\n(os.getuid(), sorted(os.listdir('/tmp')))", { context })).text).toBe('(1000, [])');
    });
  });

  it('fails when a kept file with expected content was changed, replaced by a link, or made unreadable, and passes when intact', async () => {
    await withSandbox(async (sandbox) => {
      const tag = '/home/user/.tag';
      const expect_ = { [tag]: 'build-7\n' };
      await sandbox.commands.run(`printf 'build-7\\n' > ${tag}`, { user: 'user' });
      await scrubSandbox(sandbox, { keep: [tag], expect: expect_ });
      for (const [tamper, message] of [
        [`printf 'build-7\\nsecret for the next caller\\n' > ${tag}`, /kept file \/home\/user\/\.tag was changed/],
        [`printf 'build-7\\n\\n' > ${tag}`, /was changed/],
        [`rm ${tag} && ln -s /etc/hostname ${tag}`, /was replaced or made unreadable/],
        [`chmod 000 ${tag}`, /was replaced or made unreadable/],
      ] as const) {
        await sandbox.commands.run(`rm -f ${tag}; printf 'build-7\\n' > ${tag}; ${tamper}`, { user: 'user' });
        const failure = await scrubSandbox(sandbox, { keep: [tag], expect: expect_ }).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(CommandExitError);
        expect((failure as CommandExitError).stderr).toMatch(message);
      }
      expect(() => scrubCommand([], { [tag]: 'x' })).toThrow(InvalidInputError);
    });
  });

  it('fails, naming what is left, when something cannot be removed', async () => {
    await withSandbox(async (sandbox) => {
      // Neither root (without CAP_DAC_OVERRIDE) nor user may write into a directory of a third user.
      await sandbox.commands.run("setpriv --reuid=2000 --regid=2000 --clear-groups sh -c 'mkdir /tmp/foreign && echo z > /tmp/foreign/z'", { user: 'root' });
      const failure = await scrubSandbox(sandbox).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(CommandExitError);
      expect((failure as CommandExitError).stderr).toBe('could not remove /tmp/foreign\n');
    });
  });

  it('refuses a keep path that is not absolute', () => {
    expect(() => scrubCommand(['home/user/.keep'])).toThrow(InvalidInputError);
    expect(() => scrubCommand(['/home/user/\0'])).toThrow(InvalidInputError);
  });
});

/** Everything directly in the scrubbed directories, and the processes of user, as root sees them. */
async function leftovers(sandbox: Sandbox): Promise<string> {
  const listing = await sandbox.commands.run('ls -A /home/user /tmp /var/tmp /dev/shm /dev/mqueue; echo "user processes: $(pgrep -u user | wc -l)"', { user: 'root' });
  return listing.stdout;
}

describe('tidySandbox on the local cloud', () => {
  it('removes everything in /home/user, /tmp, /var/tmp and /dev/shm but keep, from a fresh Python worker, leaving no name behind', async () => {
    await withSandbox(async (sandbox) => {
      const context = await sandbox.createCodeContext({ language: 'python' });
      await sandbox.commands.run(
        [
          "printf 'build-7\\n' > /home/user/.keep",
          'echo secret > /home/user/notes.txt && echo secret > /home/user/.hidden',
          'mkdir -p /home/user/locked/inner && echo x > /home/user/locked/inner/f && chmod 500 /home/user/locked/inner /home/user/locked',
          'echo t > /tmp/t && mkdir /tmp/dir && echo y > /tmp/dir/y && ln -s /etc/passwd /tmp/link && echo s > /dev/shm/s',
          // Found first where Python looks for modules (the working directory): the tidy-up must not run it.
          "echo 'raise SystemExit(\"planted module ran\")' > /home/user/posix.py && cp /home/user/posix.py /home/user/os.py",
          "touch $'/tmp/na\\xefve \\n name'",
          MAKE_QUEUE,
        ].join(' && '),
        { user: 'user' },
      );
      await sandbox.restartCodeContext(context);

      await tidySandbox(sandbox, context, { keep: ['/home/user/.keep'], expect: { '/home/user/.keep': 'build-7\n' } });

      expect(await leftovers(sandbox)).toBe('/dev/mqueue:\n\n/dev/shm:\n\n/home/user:\n.keep\n\n/tmp:\n\n/var/tmp:\nuser processes: 1\n');
      // The worker that ran it (the one process of user) holds no name of it.
      expect((await sandbox.runCode('sorted(name for name in globals() if not name.startswith("__"))', { context })).text).toBe('[]');
    });
  });

  it('fails, naming it and leaving it alone, when a process of user other than the worker is running', async () => {
    await withSandbox(async (sandbox) => {
      const context = await sandbox.createCodeContext({ language: 'python' });
      const sleeper = await sandbox.commands.run('sleep 600', { user: 'user', background: true });
      const failure = await tidySandbox(sandbox, context).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SandboxTidyError);
      expect((failure as SandboxTidyError).detail).toBe(`RuntimeError: process ${sleeper.pid} of the user is still running`);
      expect(await leftovers(sandbox)).toMatch(/user processes: 2\n$/);
    });
  });

  it('fails when System V IPC objects are left, which only the scrub removes', async () => {
    await withSandbox(async (sandbox) => {
      const context = await sandbox.createCodeContext({ language: 'python' });
      await sandbox.commands.run('ipcmk -M 4096 >/dev/null', { user: 'user' });
      await expect(tidySandbox(sandbox, context)).rejects.toMatchObject({ name: 'SandboxTidyError', detail: 'RuntimeError: System V IPC objects are left (/proc/sysvipc/shm)' });
      await scrubSandbox(sandbox);
      await sandbox.restartCodeContext(context);
      await tidySandbox(sandbox, context);
    });
  });

  it('fails when a kept file was changed, replaced by a link, or made unreadable, or something cannot be removed', async () => {
    await withSandbox(async (sandbox) => {
      const context = await sandbox.createCodeContext({ language: 'python' });
      const tag = '/home/user/.tag';
      const options = { keep: [tag], expect: { [tag]: 'build-7\n' } };
      for (const [tamper, detail] of [
        [`printf 'build-7\\nsecret\\n' > ${tag}`, 'RuntimeError: kept file /home/user/.tag was changed'],
        [`rm ${tag} && ln -s /etc/hostname ${tag}`, 'RuntimeError: kept file /home/user/.tag was replaced or made unreadable'],
        [`chmod 000 ${tag}`, 'RuntimeError: kept file /home/user/.tag was replaced or made unreadable'],
      ] as const) {
        await sandbox.commands.run(`rm -f ${tag}; printf 'build-7\\n' > ${tag}; ${tamper}`, { user: 'user' });
        await expect(tidySandbox(sandbox, context, options)).rejects.toMatchObject({ name: 'SandboxTidyError', detail });
      }
      await sandbox.commands.run(`rm -f ${tag}; printf 'build-7\\n' > ${tag}`, { user: 'user' });
      await tidySandbox(sandbox, context, options);
      // user cannot remove what root left in the sticky /tmp.
      await sandbox.commands.run('echo r > /tmp/root-file', { user: 'root' });
      const failure = await tidySandbox(sandbox, context, options).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SandboxTidyError);
      expect((failure as SandboxTidyError).detail).toBe('RuntimeError: could not remove /tmp/root-file (Operation not permitted)');
      expect(() => tidyCode([], { [tag]: 'x' })).toThrow(InvalidInputError);
      expect(() => tidyCode(['home/user/.keep'])).toThrow(InvalidInputError);
    });
  });
});
