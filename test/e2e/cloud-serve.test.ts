import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { request as tlsRequest } from 'node:https';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Sandbox } from 'e2b';
import { waitFor } from '../fixtures/localcloud.js';
import { makeTestCertificates } from '../fixtures/tls.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const started: ChildProcessWithoutNullStreams[] = [];
const folders: string[] = [];

afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** Starts `tradeswarm cloud serve` with `args`; resolves with the process, once it printed its settings, and the connection they give. */
async function serve(args: readonly string[]): Promise<{ server: ChildProcessWithoutNullStreams; output: () => string; connection: { apiKey: string; apiUrl: string; sandboxUrl: string } }> {
  const server = spawn(process.execPath, ['bin/tradeswarm.js', 'cloud', 'serve', '--port', '0', ...args], { cwd: repository, env: { ...process.env, LOG_LEVEL: 'warn' } });
  started.push(server);
  let printed = '';
  server.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  server.stderr.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  await waitFor(() => printed.includes('E2B_API_KEY='), 'the server to print its settings', 20_000);
  const settings = Object.fromEntries([...printed.matchAll(/export (E2B_\w+)=(\S+)/g)].map((match) => [match[1]!, match[2]!]));
  return { server, output: () => printed, connection: { apiKey: settings.E2B_API_KEY!, apiUrl: settings.E2B_API_URL!, sandboxUrl: settings.E2B_SANDBOX_URL! } };
}

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

  it('keeps listed snapshots in the data folder it is given: a server started again on it, after a SIGKILL, lists them and starts sandboxes from them', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-serve-kept-'));
    folders.push(folder);
    const first = await serve(['--data-dir', folder, '--warm-pool', '0']);
    const sandbox = await Sandbox.create('base', { ...first.connection });
    await sandbox.files.write('/home/user/state.txt', 'kept across servers');
    await sandbox.commands.run('echo root > /opt/marker', { user: 'root' });
    const snapshot = await sandbox.createSnapshot({ name: 'kept' });
    const { snapshotId: unwanted } = await sandbox.createSnapshot({ name: 'unwanted' });
    expect(await Sandbox.deleteSnapshot(unwanted, { ...first.connection })).toBe(true);
    // A second server on the same folder is refused while the first runs, and changes nothing of it.
    const intruder = spawn(process.execPath, ['bin/tradeswarm.js', 'cloud', 'serve', '--port', '0', '--data-dir', folder], { cwd: repository, env: { ...process.env, LOG_LEVEL: 'warn' } });
    let refusal = '';
    intruder.stderr.on('data', (chunk: Buffer) => (refusal += chunk.toString()));
    intruder.stdout.on('data', (chunk: Buffer) => (refusal += chunk.toString()));
    const [code] = (await once(intruder, 'exit')) as [number | null];
    expect(code).not.toBe(0);
    expect(refusal).toContain(`dataDir: ${folder} is in use by local cloud server process ${first.server.pid}: a data folder serves one server at a time`);
    expect((await Sandbox.listSnapshots({ ...first.connection }).nextItems()).map((item) => item.snapshotId)).toEqual([snapshot.snapshotId]);
    first.server.kill('SIGKILL');
    await once(first.server, 'exit');

    const kept = join(folder, 'snapshots');
    expect(readdirSync(kept).sort()).toEqual([`${snapshot.snapshotId}.img`, `${snapshot.snapshotId}.json`]);
    // What a server killed at its worst moments leaves: a record it wrote before its image, and a damaged one.
    const record = JSON.parse(readFileSync(join(kept, `${snapshot.snapshotId}.json`), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(kept, 'snap_half.json'), JSON.stringify({ ...record, id: 'snap_half', templateId: 'snap_half' }));
    writeFileSync(join(kept, 'snap_damaged.json'), '{"version": 1, "id": ');

    const second = await serve(['--data-dir', folder, '--warm-pool', '0']);
    // stderr may arrive after the settings on stdout.
    await waitFor(() => second.output().includes('snap_damaged.json') && second.output().includes('a kept snapshot record could not be read'), 'a warning naming the damaged record');
    expect(second.output()).not.toContain('snap_half');
    const listed = await Sandbox.listSnapshots({ ...second.connection }).nextItems();
    expect(listed.map((item) => [item.snapshotId, item.names])).toEqual([[snapshot.snapshotId, ['kept']]]);
    const restored = await Sandbox.create(snapshot.snapshotId, { ...second.connection });
    expect(await restored.files.read('/home/user/state.txt')).toBe('kept across servers');
    expect((await restored.commands.run('cat /opt/marker')).stdout).toBe('root\n');
    await restored.kill();
    expect(await Sandbox.deleteSnapshot(snapshot.snapshotId, { ...second.connection })).toBe(true);
    expect(existsSync(join(kept, `${snapshot.snapshotId}.img`)) || existsSync(join(kept, `${snapshot.snapshotId}.json`))).toBe(false);
    second.server.kill('SIGINT');
    await once(second.server, 'exit');
  });

  it('keeps paused sandboxes in the data folder it is given: one paused without its memory outlives a SIGKILL, and every paused one a stop; the next server lists them paused and boots them on connect', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-serve-paused-'));
    folders.push(folder);
    const first = await serve(['--data-dir', folder, '--warm-pool', '0']);
    const [cold, warm] = await Promise.all([0, 1].map(() => Sandbox.create('base', { ...first.connection, metadata: { test: 'paused' } })));
    await cold!.files.write('/home/user/state.txt', 'kept paused');
    await cold!.commands.run('echo root > /opt/marker', { user: 'root' });
    await cold!.pause({ keepMemory: false });
    // One paused with its memory dies with its server when that is killed: only its processes held it.
    await warm!.pause();
    first.server.kill('SIGKILL');
    await once(first.server, 'exit');
    expect(readdirSync(join(folder, 'paused')).sort()).toEqual([`${cold!.sandboxId}.img`, `${cold!.sandboxId}.json`]);
    // Its record holds its access tokens: for the server's user alone.
    expect(statSync(join(folder, 'paused', `${cold!.sandboxId}.json`)).mode & 0o077).toBe(0);

    const second = await serve(['--data-dir', folder, '--warm-pool', '0']);
    const listed = await Sandbox.list({ ...second.connection, query: { metadata: { test: 'paused' }, state: ['paused', 'running'] } }).nextItems();
    expect(listed.map((item) => [item.sandboxId, item.state])).toEqual([[cold!.sandboxId, 'paused']]);
    const resumed = await Sandbox.connect(cold!.sandboxId, { ...second.connection });
    expect(await resumed.files.read('/home/user/state.txt')).toBe('kept paused');
    expect((await resumed.commands.run('cat /opt/marker')).stdout).toBe('root\n');
    expect(existsSync(join(folder, 'paused', `${cold!.sandboxId}.json`))).toBe(false);
    // Paused with its memory when its server stops: its filesystem is kept, and it boots again.
    await resumed.files.write('/home/user/state.txt', 'kept at the stop');
    await resumed.pause();
    second.server.kill('SIGINT');
    await once(second.server, 'exit');

    const third = await serve(['--data-dir', folder, '--warm-pool', '0']);
    expect((await Sandbox.getInfo(cold!.sandboxId, { ...third.connection })).state).toBe('paused');
    const again = await Sandbox.connect(cold!.sandboxId, { ...third.connection });
    expect(await again.files.read('/home/user/state.txt')).toBe('kept at the stop');
    await again.kill();
    expect(readdirSync(join(folder, 'paused'))).toEqual([]);
    third.server.kill('SIGINT');
    await once(third.server, 'exit');
  });

  it("names sandboxes under --domain and serves them over HTTPS on --tls-port with the certificate given; refuses a --tls-port without one, saying what to add", async () => {
    const certificates = makeTestCertificates('sandbox.test');
    folders.push(certificates.dir);
    const named = await serve(['--warm-pool', '0', '--domain', 'sandbox.test', '--tls-port', '0', '--tls-cert', join(certificates.dir, 'cert.pem'), '--tls-key', join(certificates.dir, 'key.pem')]);
    const tlsPort = /and https:\/\/<port>-<sandboxId>\.sandbox\.test:(\d+)\//.exec(named.output())?.[1];
    expect(tlsPort).toMatch(/^\d+$/);
    const sandbox = await Sandbox.create('base', { ...named.connection });
    expect(sandbox.getHost(8000)).toBe(`8000-${sandbox.sandboxId}.sandbox.test`);
    // envd's health under E2B's name for its port, over the HTTPS listener.
    const status = await new Promise<number>((resolve, reject) => {
      const host = sandbox.getHost(49983);
      const sent = tlsRequest({ host: '127.0.0.1', port: Number(tlsPort), servername: host, path: '/health', headers: { host }, ca: certificates.ca }, (answer) => {
        answer.resume();
        resolve(answer.statusCode ?? 0);
      });
      sent.on('error', reject);
      sent.end();
    });
    expect(status).toBeLessThan(300);
    named.server.kill('SIGINT');
    await once(named.server, 'exit');

    const refused = spawn(process.execPath, ['bin/tradeswarm.js', 'cloud', 'serve', '--port', '0', '--tls-port', '443'], { cwd: repository });
    let errors = '';
    refused.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const [code] = (await once(refused, 'exit')) as [number];
    expect(code).not.toBe(0);
    expect(errors).toMatch(/--tls-port: needs --tls-cert and --tls-key with it/);
  });
});
