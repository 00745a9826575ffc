import { describe, expect, it } from 'vitest';
import { CommandExitError, Sandbox, TimeoutError } from 'e2b';
import { useBackend } from '../fixtures/backend.js';
import { useSandbox, waitFor } from '../fixtures/localcloud.js';

const backend = useBackend();
const sandbox = useSandbox(backend);

describe('commands through the unmodified e2b SDK', () => {
  it('runs a command and returns its output and exit code', async () => {
    const result = await sandbox().commands.run('echo out; echo err >&2; whoami; pwd');
    expect(result).toMatchObject({ exitCode: 0, stdout: 'out\nuser\n/home/user\n', stderr: 'err\n' });
  });

  it('throws CommandExitError with the exit code and output on failure', async () => {
    const error = await sandbox().commands.run('echo partial; echo broken >&2; exit 3').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CommandExitError);
    expect((error as CommandExitError).exitCode).toBe(3);
    expect((error as CommandExitError).stdout).toBe('partial\n');
    expect((error as CommandExitError).stderr).toBe('broken\n');
  });

  it('applies envs, cwd and user', async () => {
    await sandbox().files.makeDir('/home/user/work');
    const result = await sandbox().commands.run('echo "$A $B $(pwd) $(id -u)"', { envs: { A: '1', B: 'two words' }, cwd: '/home/user/work' });
    expect(result.stdout).toBe('1 two words /home/user/work 1000\n');
    const root = await sandbox().commands.run('id -u; echo $HOME', { user: 'root' });
    expect(root.stdout).toBe('0\n/root\n');
  });

  it('streams output of a background command while it runs', async () => {
    const chunks: string[] = [];
    const handle = await sandbox().commands.run('echo first; while [ ! -f /tmp/go ]; do sleep 0.01; done; echo second', {
      background: true,
      onStdout: (data) => void chunks.push(data),
    });
    await waitFor(() => chunks.join('') === 'first\n', 'the first line while the command still runs');
    await sandbox().files.write('/tmp/go', '');
    const result = await handle.wait();
    expect(chunks.join('')).toBe('first\nsecond\n');
    expect(result.exitCode).toBe(0);
  });

  it('writes to stdin and closes it', async () => {
    const handle = await sandbox().commands.run('cat; echo done', { background: true, stdin: true });
    await sandbox().commands.sendStdin(handle.pid, 'line one\n');
    await sandbox().commands.sendStdin(handle.pid, 'line two\n');
    await sandbox().commands.closeStdin(handle.pid);
    const result = await handle.wait();
    expect(result.stdout).toBe('line one\nline two\ndone\n');
  });

  it('lists running commands, connects to one after disconnecting, and kills it', async () => {
    const before: string[] = [];
    const handle = await sandbox().commands.run('echo started; while [ ! -f /tmp/stop-list ]; do sleep 0.01; done; echo stopping', {
      background: true,
      onStdout: (data) => void before.push(data),
    });
    await waitFor(() => before.join('') === 'started\n', 'the command to print before disconnecting');
    const listed = await sandbox().commands.list();
    const mine = listed.find((process) => process.pid === handle.pid);
    expect(mine).toMatchObject({ cmd: '/bin/bash', args: ['-l', '-c', expect.stringContaining('stop-list')] });

    await handle.disconnect();
    const seen: string[] = [];
    const reconnected = await sandbox().commands.connect(handle.pid, { onStdout: (data) => void seen.push(data) });
    await sandbox().files.write('/tmp/stop-list', '');
    const result = await reconnected.wait();
    expect(seen.join('')).toBe('stopping\n');
    expect(result.exitCode).toBe(0);

    const sleeper = await sandbox().commands.run('sleep 30', { background: true });
    expect(await sandbox().commands.kill(sleeper.pid)).toBe(true);
    const killed = await sleeper.wait().catch((caught: unknown) => caught);
    expect(killed).toBeInstanceOf(CommandExitError);
    expect((killed as CommandExitError).exitCode).toBe(-1);
    expect(await sandbox().commands.kill(sleeper.pid)).toBe(false);
    expect((await sandbox().commands.list()).map((process) => process.pid)).not.toContain(sleeper.pid);
  });

  it('kills the whole tree of a killed command', async () => {
    const count = async (): Promise<string> => (await sandbox().commands.run('pgrep -c -f "^sleep 30[12]$" || true')).stdout.trim();
    const handle = await sandbox().commands.run('sleep 301 & sleep 302 & wait', { background: true });
    await waitFor(async () => (await count()) === '2', 'both sleeps to start');
    await handle.kill();
    await waitFor(async () => (await count()) === '0', 'every sleep to die');
  });

  it('loses neither output nor exit of many commands that finish at once', async () => {
    const results = await Promise.all(Array.from({ length: 24 }, (_, index) => sandbox().commands.run(`echo ${index}`)));
    expect(results.map((result) => result.stdout)).toEqual(Array.from({ length: 24 }, (_, index) => `${index}\n`));
  });

  it("surfaces a command cut short by its sandbox's kill or end of life as TimeoutError, not as the command's death", async () => {
    const doomed = await Sandbox.create('base', backend().connection);
    const background = await doomed.commands.run('sleep 60', { background: true });
    await doomed.kill();
    const killed = await background.wait().catch((caught: unknown) => caught);
    expect(killed).toBeInstanceOf(TimeoutError);
    expect((killed as Error).message).toContain('sandbox was killed or reached its end of life');

    const shortLived = await Sandbox.create('base', { ...backend().connection, timeoutMs: 1000 });
    try {
      const expired = await shortLived.commands.run('sleep 60').catch((caught: unknown) => caught);
      expect(expired).toBeInstanceOf(TimeoutError);
      expect((expired as Error).message).toContain('sandbox was killed or reached its end of life');
    } finally {
      await shortLived.kill();
    }
  });

  it('gives user a working sudo: commands run as root with their exit code, and with no more power than root has', async () => {
    const result = await sandbox().commands.run('sudo id -u; sudo -u user id -u; sudo echo "[$FOO]"; echo $FOO', { envs: { FOO: 'scoped' } });
    expect(result.stdout).toBe('0\n1000\n[scoped]\nscoped\n');
    // A command that ends at once, then more of the caller's script: its exit still reaches sudo.
    expect((await sandbox().commands.run('sudo true; sudo true; echo after')).stdout).toBe('after\n');
    const failed = await sandbox().commands.run('sudo sh -c "exit 3"').catch((caught: unknown) => caught);
    expect((failed as CommandExitError).exitCode).toBe(3);
    const capabilities = 'grep -E "^Cap(Prm|Eff|Bnd)" /proc/self/status';
    const viaSudo = await sandbox().commands.run(`sudo ${capabilities}`);
    const asRoot = await sandbox().commands.run(capabilities, { user: 'root' });
    expect(viaSudo.stdout).toBe(asRoot.stdout);
  });

  it('has python, which is python 3, for user and root (as in E2B\'s base template)', async () => {
    const version = 'python -c "import sys; print(sys.version_info[0])"';
    expect((await sandbox().commands.run(version)).stdout).toBe('3\n');
    expect((await sandbox().commands.run(version, { user: 'root' })).stdout).toBe('3\n');
  });

  it('refuses a cwd that does not exist (the local cloud with a message naming it)', async () => {
    const refused = sandbox().commands.run('true', { cwd: '/home/user/missing' });
    // The wording is each backend's own; the local cloud's names the folder and what is wrong with it.
    if (backend().kind === 'local') await expect(refused).rejects.toThrow(/cwd '\/home\/user\/missing' is not an existing directory/);
    else await expect(refused).rejects.toThrow();
  });
});
