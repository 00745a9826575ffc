import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../fixtures/localcloud.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const started: ChildProcessWithoutNullStreams[] = [];
const folders: string[] = [];

afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

describe('tradeswarm cloud serve', () => {
  it('serves an unmodified e2b SDK program configured only by the env vars it prints, and kills its sandboxes on Ctrl-C', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-serve-'));
    folders.push(folder);
    writeFileSync(join(folder, 'agent.yaml'), 'name: greeter\nfiles:\n  greeting.txt: "hello from a local template\\n"\nenvs:\n  ROLE: greeter\n');
    const server = spawn(process.execPath, ['bin/tradeswarm.js', 'cloud', 'serve', '--port', '0', '--template', join(folder, 'agent.yaml')], {
      cwd: repository,
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    started.push(server);
    let printed = '';
    server.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    await waitFor(() => printed.includes('E2B_API_KEY='), 'the server to print its settings', 20_000);
    expect(printed).toContain('templates: base, code-interpreter-v1, greeter');
    const settings = Object.fromEntries([...printed.matchAll(/export (E2B_\w+)=(\S+)/g)].map((match) => [match[1]!, match[2]!]));
    expect(Object.keys(settings).sort()).toEqual(['E2B_API_KEY', 'E2B_API_URL', 'E2B_SANDBOX_URL']);

    const program = spawn(process.execPath, [join(repository, 'test/fixtures/user-program.mjs'), 'greeter'], { cwd: repository, env: { ...process.env, ...settings } });
    let output = '';
    program.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let errors = '';
    program.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const [code] = (await once(program, 'exit')) as [number];
    expect(errors).toBe('');
    expect(code).toBe(0);
    const seen = JSON.parse(output) as { sandboxId: string; stdout: string; result: string };
    expect(seen.stdout).toBe('hello from a local template\ngreeter\n');
    expect(seen.result).toBe('45');

    const response = await fetch(`${settings.E2B_API_URL}/v2/sandboxes?metadata=from%3Duser-program`, { headers: { 'x-api-key': settings.E2B_API_KEY! } });
    expect(((await response.json()) as Array<{ sandboxID: string }>).map((sandbox) => sandbox.sandboxID)).toEqual([seen.sandboxId]);

    server.kill('SIGINT');
    const [exitCode] = (await once(server, 'exit')) as [number];
    expect(exitCode).toBe(0);
    expect(printed).toContain('stopping: killing every sandbox');
  });
});
