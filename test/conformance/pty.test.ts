import { describe, expect, it } from 'vitest';
import { CommandExitError, InvalidArgumentError, Sandbox, type CommandHandle } from 'e2b';
import { itLocal, useBackend } from '../fixtures/backend.js';
import { useSandbox, waitFor } from '../fixtures/localcloud.js';

const backend = useBackend();
const sandbox = useSandbox(backend);
/** Generous: a loaded machine can take seconds to start a login shell; this is for hangs, not speed. */
const WAIT_MS = 30_000;

/** A terminal whose output is collected as text. */
interface Terminal {
  readonly handle: CommandHandle;
  /** Everything the terminal showed so far. */
  readonly output: string;
  /** Types `line` and a newline into the terminal. */
  type(line: string): Promise<void>;
  /** Waits until the output has `text` (written so that the terminal's echo of the typed command does not). */
  see(text: string): Promise<void>;
}

async function openTerminal(on: Sandbox, options: { envs?: Record<string, string>; cwd?: string; user?: 'user' | 'root' } = {}): Promise<Terminal> {
  const decoder = new TextDecoder();
  let output = '';
  const handle = await on.pty.create({ cols: 80, rows: 24, ...options, onData: (data) => void (output += decoder.decode(data, { stream: true })) });
  return {
    handle,
    get output() {
      return output;
    },
    type: (line) => on.pty.sendInput(handle.pid, new TextEncoder().encode(`${line}\n`)),
    see: (text) =>
      waitFor(() => output.includes(text), `'${text}' on the terminal`, WAIT_MS).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; it shows ${JSON.stringify(output)}`);
      }),
  };
}

describe('PTY sessions through the unmodified e2b SDK', () => {
  it('runs bash on a terminal of its own, with the envs, cwd and user asked for', async () => {
    const terminal = await openTerminal(sandbox(), { envs: { ABC: '123' }, cwd: '/tmp' });
    // $((…)) makes the shell's answer differ from the terminal's echo of what was typed.
    await terminal.type('echo "[$((40 + 2))|$ABC|$(id -un)|$(pwd)|$TERM]"; tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo "all-$((1 + 1))-ttys"');
    await terminal.see('[42|123|user|/tmp|xterm-256color]');
    await terminal.see('all-2-ttys');
    expect(terminal.output).toMatch(/\/dev\/pts\/\d+\r\n/);
    // Ctrl+C interrupts the job in front, as in any terminal, and the shell carries on.
    await terminal.type('sleep 100; echo "not-$((2 + 2))-interrupted"');
    await waitFor(async () => (await sandbox().commands.run('pgrep -f "^sleep 100$" || true')).stdout !== '', 'the sleep to start', WAIT_MS);
    await sandbox().pty.sendInput(terminal.handle.pid, new Uint8Array([0x03]));
    await terminal.type('echo "after-$((1 + 1))"');
    await terminal.see('after-2');
    expect(terminal.output).not.toContain('not-4-interrupted');
    await terminal.type('exit');
    const result = await terminal.handle.wait();
    expect(result.exitCode).toBe(0);

    const root = await openTerminal(sandbox(), { user: 'root' });
    await root.type('echo "uid=$((0 + $(id -u)))"; exit');
    await root.handle.wait();
    expect(root.output).toContain('uid=0');
  });

  it('runs sudo on the terminal, and passes Ctrl+C on to its command', async () => {
    const terminal = await openTerminal(sandbox());
    await terminal.type('sudo sh -c \'echo "uid-$(id -u)"; [ -t 0 ] && echo "on-$((1 + 1))-terminal"\'');
    await terminal.see('uid-0');
    await terminal.see('on-2-terminal');
    await terminal.type('sudo sleep 306; echo "status=$?"');
    await waitFor(async () => (await sandbox().commands.run('pgrep -f "^sleep 306$" || true')).stdout !== '', 'the sleep to start', WAIT_MS);
    await sandbox().pty.sendInput(terminal.handle.pid, new Uint8Array([0x03]));
    await terminal.see('status=130');
    expect((await sandbox().commands.run('pgrep -f "^sleep 306$" || true')).stdout).toBe('');
    await terminal.type('exit');
    expect((await terminal.handle.wait()).exitCode).toBe(0);
  });

  it('resizes: the program on the terminal gets SIGWINCH and stty reports the new size', async () => {
    const terminal = await openTerminal(sandbox());
    await terminal.type('stty size');
    await terminal.see('24 80\r\n');
    // A foreground job in its own process group: the kernel signals the terminal's foreground group.
    await terminal.type(`bash -c 'trap "echo winch-$((40 + 2)); exit" WINCH; echo ready-$((1 + 1)); while :; do sleep 0.05; done'`);
    await terminal.see('ready-2');
    await sandbox().pty.resize(terminal.handle.pid, { cols: 132, rows: 50 });
    await terminal.see('winch-42');
    await terminal.type('stty size; tput cols; exit');
    await terminal.see('50 132\r\n132\r\n');
    expect((await terminal.handle.wait()).exitCode).toBe(0);
  });

  it('kills the terminal and every job started in it', async () => {
    const count = async (): Promise<string> => (await sandbox().commands.run('pgrep -c -f "^sleep 30[345]$" || true')).stdout.trim();
    const terminal = await openTerminal(sandbox());
    // Job control puts each job in a process group of its own, and sudo's command runs in a session of
    // its own; the kill reaches them all.
    await terminal.type('sudo sleep 305 & sleep 303 & sleep 304');
    await waitFor(async () => (await count()) === '3', 'the three sleeps to start', WAIT_MS);
    expect(await sandbox().pty.kill(terminal.handle.pid)).toBe(true);
    const ended = await terminal.handle.wait().catch((caught: unknown) => caught);
    expect(ended).toBeInstanceOf(CommandExitError);
    expect((ended as CommandExitError).exitCode).toBe(-1);
    expect((ended as CommandExitError).error).toBe('signal: killed');
    await waitFor(async () => (await count()) === '0', 'every sleep to die', WAIT_MS);
    expect(await sandbox().pty.kill(terminal.handle.pid)).toBe(false);
  });

  it('reconnects to a running terminal and receives what it writes after that', async () => {
    const terminal = await openTerminal(sandbox());
    await terminal.type('echo "first-$((1 + 1))"');
    await terminal.see('first-2');
    await terminal.handle.disconnect();
    const listed = (await sandbox().commands.list()).find((process) => process.pid === terminal.handle.pid);
    expect(listed).toMatchObject({ cmd: '/bin/bash', args: ['-i', '-l'] });

    let later = '';
    const decoder = new TextDecoder();
    const reconnected = await sandbox().pty.connect(terminal.handle.pid, { onData: (data) => void (later += decoder.decode(data, { stream: true })) });
    expect(reconnected.pid).toBe(terminal.handle.pid);
    await sandbox().pty.sendInput(terminal.handle.pid, new TextEncoder().encode('echo "second-$((2 + 1))"; exit\n'));
    const result = await reconnected.wait();
    expect(result.exitCode).toBe(0);
    expect(later).toContain('second-3');
    expect(later).not.toContain('first-2');
    expect(terminal.output).not.toContain('second-3');
  });

  it("shows a sandbox its own terminals only", async () => {
    const terminal = await openTerminal(sandbox());
    await terminal.type('echo "open-$((1 + 1))"');
    await terminal.see('open-2');
    const other = await Sandbox.create('base', backend().connection);
    try {
      expect((await other.commands.run('ls /dev/pts')).stdout).toBe('ptmx\n');
    } finally {
      await other.kill();
      await sandbox().pty.kill(terminal.handle.pid);
    }
  });

  itLocal('the limit is the local cloud\'s own')('gives a sandbox at most 256 terminals', async () => {
    const other = await Sandbox.create('base', backend().connection);
    try {
      const script = 'import errno, os\nopened = []\ntry:\n    while True:\n        opened.append(os.openpty())\nexcept OSError as error:\n    print(len(opened), errno.errorcode[error.errno])';
      await other.files.write('/tmp/terminals.py', script);
      expect((await other.commands.run('python3 /tmp/terminals.py')).stdout).toBe('256 ENOSPC\n');
    } finally {
      await other.kill();
    }
  });

  itLocal("checks the local cloud's own messages")('refuses a bad terminal size, naming the field', async () => {
    const refused = async (size: { cols: number; rows: number }): Promise<Error> =>
      (await sandbox().pty.create({ ...size, onData: () => undefined }).catch((caught: unknown) => caught)) as Error;
    for (const [size, message] of [
      [{ cols: 0, rows: 24 }, 'pty.size.cols is 0: give the terminal\'s width in columns, a whole number from 1 to 65535'],
      [{ cols: 80, rows: 0 }, 'pty.size.rows is 0: give the terminal\'s height in rows, a whole number from 1 to 65535'],
      [{ cols: 70_000, rows: 24 }, 'pty.size.cols is 70000'],
    ] as const) {
      const error = await refused(size);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toContain(message);
    }

    const terminal = await openTerminal(sandbox());
    const badResize = await sandbox().pty.resize(terminal.handle.pid, { cols: 80, rows: 100_000 }).catch((caught: unknown) => caught);
    expect(badResize).toBeInstanceOf(InvalidArgumentError);
    expect((badResize as Error).message).toContain('pty.size.rows is 100000');
    const closeStdin = await sandbox().commands.closeStdin(terminal.handle.pid).catch((caught: unknown) => caught);
    expect((closeStdin as Error).message).toContain('runs on a pty, which has no stdin to close: send Ctrl+D (0x04)');
    await sandbox().pty.kill(terminal.handle.pid);

    const plain = await sandbox().commands.run('sleep 30', { background: true });
    const notPty = await sandbox().pty.resize(plain.pid, { cols: 80, rows: 24 }).catch((caught: unknown) => caught);
    expect((notPty as Error).message).toContain(`process ${plain.pid} was not started with a pty: only a PTY session can be resized`);
    await plain.kill();
  });
});
