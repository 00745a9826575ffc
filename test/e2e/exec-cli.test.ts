import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../fixtures/localcloud.js';
import { reachCode } from '../fixtures/network.js';
import { closedPort } from '../fixtures/servers.js';

const repository = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

describe('tradeswarm exec', () => {
  it('runs -c code in a sandbox and prints its output and value', async () => {
    const { stdout } = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '-c', 'print("from the cli")\n6 * 7'], { cwd: repository });
    expect(stdout).toBe('from the cli\n42\n');
  });

  it('exits 1 and prints the traceback when the code raises, and names a bad flag value', async () => {
    const failing = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '-l', 'javascript', '-c', 'throw new Error("boom")'], { cwd: repository }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(failing).toMatchObject({ code: 1 });
    expect((failing as { stderr: string }).stderr).toMatch(/Error: boom/);
    const bad = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '-l', 'ruby', '-c', 'x'], { cwd: repository }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(bad).toMatchObject({ code: 1 });
    expect((bad as { stderr: string }).stderr).toMatch(/language: must be one of python, javascript/);
  });

  it('says which address it could not reach and what to do, for --url and for the sandbox provider', async () => {
    const port = await closedPort();
    const remote = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--url', `http://127.0.0.1:${port}`, '-c', '1'], { cwd: repository }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(remote).toMatchObject({ code: 1 });
    expect((remote as { stderr: string }).stderr).toMatch(new RegExp(`--url: could not reach tradeswarm exec serve at http://127.0.0.1:${port} \\(fetch failed: .*ECONNREFUSED.*\\); start it with`));
    const provider = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--sandbox', 'e2b', '-c', '1'], {
      cwd: repository,
      env: { ...process.env, E2B_API_KEY: `e2b_${'0'.repeat(40)}`, E2B_API_URL: `http://127.0.0.1:${port}`, E2B_SANDBOX_URL: `http://127.0.0.1:${port}` },
    }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(provider).toMatchObject({ code: 1 });
    expect((provider as { stderr: string }).stderr).toMatch(new RegExp(`could not reach the sandbox provider at http://127.0.0.1:${port} \\(fetch failed: .*ECONNREFUSED.*\\); check connection.apiUrl`));
  });

  it('gives executed code no network unless --allow-internet-access is given', async () => {
    const listener = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const code = reachCode('python', [(listener.address() as AddressInfo).port]);
      const closed = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '-c', code], { cwd: repository });
      expect(closed.stdout).toBe('["failed"]\n');
      const opened = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--allow-internet-access', '-c', code], { cwd: repository });
      expect(opened.stdout).toBe('["connected"]\n');
      const remote = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--url', 'http://127.0.0.1:1', '--allow-internet-access', '-c', '1'], { cwd: repository }).catch(
        (error: unknown) => error as { code: number; stderr: string },
      );
      expect(remote).toMatchObject({ code: 1 });
      expect((remote as { stderr: string }).stderr).toMatch(/--allow-internet-access: the server at --url decides/);
    } finally {
      listener.close();
    }
  });

  // --concurrency 2: the server listens once 2 sandboxes are ready, not the 12 of the default here, which took
  // more than a minute on a machine loaded by the rest of the suite.
  it('serves HTTP with `exec serve`, and `exec --url` sends code to it', async () => {
    const server = spawn(process.execPath, ['bin/tradeswarm.js', 'exec', 'serve', '--port', '0', '--api-key', 'k-e2e', '--concurrency', '2'], { cwd: repository });
    try {
      let printed = '';
      server.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      await waitFor(() => /listening on (http:\/\/\S+)/.test(printed), 'the server to print its address', 90_000);
      const url = /listening on (http:\/\/\S+)/.exec(printed)![1]!;
      const { stdout } = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--url', url, '--api-key', 'k-e2e', '-c', 'sum(range(101))'], { cwd: repository });
      expect(stdout).toBe('5050\n');
      const refused = await fetch(`${url}/v1/exec`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"code":"1"}' });
      expect(refused.status).toBe(401);
      const badFlag = await run(process.execPath, ['bin/tradeswarm.js', 'exec', 'serve', '--port', '0', '--concurrency', '0'], { cwd: repository }).catch((error: unknown) => error as { code: number; stderr: string });
      expect(badFlag).toMatchObject({ code: 1 });
      expect((badFlag as { stderr: string }).stderr).toMatch(/--concurrency: must be a whole number >= 1, got "0"/);
    } finally {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
  });
});

describe('the template of the sandboxes: --template, else E2B_TEMPLATE_ID', () => {
  const TEMPLATE_OF_SANDBOX = 'import os\nos.environ["E2B_TEMPLATE_ID"]';

  it('exec makes its sandbox from --template over E2B_TEMPLATE_ID, and names the one of the two the cloud does not have', { timeout: 60_000 }, async () => {
    const env = (template: string): NodeJS.ProcessEnv => ({ ...process.env, E2B_TEMPLATE_ID: template });
    const flag = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--template', 'code-interpreter-v1', '-c', TEMPLATE_OF_SANDBOX], { cwd: repository, env: env('no-such-template') });
    expect(flag.stdout).toBe("'code-interpreter-v1'\n");
    const variable = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '-c', TEMPLATE_OF_SANDBOX], { cwd: repository, env: env('code-interpreter-v1') });
    expect(variable.stdout).toBe("'code-interpreter-v1'\n");
    const badFlag = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--template', 'no-such-template', '-c', '1'], { cwd: repository }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(badFlag).toMatchObject({ code: 1 });
    expect((badFlag as { stderr: string }).stderr).toMatch(/--template: the sandbox provider has no template 'no-such-template' \(404: .*this local cloud has: .*code-interpreter-v1.*\); name a template it has/);
    const badVariable = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '-c', '1'], { cwd: repository, env: env('no-such-template') }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(badVariable).toMatchObject({ code: 1 });
    expect((badVariable as { stderr: string }).stderr).toMatch(/E2B_TEMPLATE_ID: the sandbox provider has no template 'no-such-template'/);
  });

  it('exec serve and mcp make theirs from it too', async () => {
    const server = spawn(process.execPath, ['bin/tradeswarm.js', 'exec', 'serve', '--port', '0', '--concurrency', '1'], { cwd: repository, env: { ...process.env, E2B_TEMPLATE_ID: 'code-interpreter-v1' } });
    try {
      let printed = '';
      server.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      await waitFor(() => /listening on (http:\/\/\S+)/.test(printed), 'the server to print its address', 60_000);
      const url = /listening on (http:\/\/\S+)/.exec(printed)![1]!;
      const { stdout } = await run(process.execPath, ['bin/tradeswarm.js', 'exec', '--url', url, '-c', TEMPLATE_OF_SANDBOX], { cwd: repository });
      expect(stdout).toBe("'code-interpreter-v1'\n");
    } finally {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: ['bin/tradeswarm.js', 'mcp', '--template', 'code-interpreter-v1'], cwd: repository, stderr: 'pipe' }));
    try {
      const result = await client.callTool({ name: 'run_code', arguments: { code: TEMPLATE_OF_SANDBOX } });
      expect((result.content as Array<{ text: string }>)[0]?.text).toContain("result: 'code-interpreter-v1'");
    } finally {
      await client.close();
    }
  });
});

describe('tradeswarm mcp', () => {
  it('serves run_code over stdio to the MCP SDK client', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: ['bin/tradeswarm.js', 'mcp'], cwd: repository, stderr: 'pipe' });
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(transport);
    try {
      const result = await client.callTool({ name: 'run_code', arguments: { code: 'import math\nmath.factorial(10)' } });
      expect(result.isError).toBe(false);
      expect((result.content as Array<{ text: string }>)[0]?.text).toContain('result: 3628800');
    } finally {
      await client.close();
    }
  });
});

/**
 * The MCP client's stdio transport over a process the test spawned itself, so the test decides how the
 * session ends (stdin closed, or a signal) and sees the exit code; the SDK's own transport sends SIGTERM
 * and SIGKILL on its own schedule and hides both.
 */
class ChildTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer = new ReadBuffer();

  constructor(readonly child: ChildProcessWithoutNullStreams) {}

  start(): Promise<void> {
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.buffer.append(chunk);
      for (let message = this.buffer.readMessage(); message !== null; message = this.buffer.readMessage()) this.onmessage?.(message);
    });
    this.child.once('close', () => this.onclose?.());
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => this.child.stdin.write(serializeMessage(message), (error) => (error ? reject(error) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.child.stdin.end(resolve));
  }
}

describe('tradeswarm mcp ends cleanly', () => {
  it.each([
    ['its client closes stdin', (child: ChildProcessWithoutNullStreams) => child.stdin.end()],
    ['it gets SIGTERM', (child: ChildProcessWithoutNullStreams) => child.kill('SIGTERM')],
  ] as const)('exits 0 with its sandboxes gone when %s', async (_how, end) => {
    // At info level the embedded local cloud logs the folder its sandboxes live in; closing it kills them and removes the folder.
    const child = spawn(process.execPath, ['bin/tradeswarm.js', 'mcp'], { cwd: repository, env: { ...process.env, LOG_LEVEL: 'info' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const client = new Client({ name: 'e2e', version: '1.0.0' });
      await client.connect(new ChildTransport(child));
      const result = await client.callTool({ name: 'run_code', arguments: { code: '6 * 7' } });
      expect((result.content as Array<{ text: string }>)[0]?.text).toContain('result: 42');
      const dataDir = (JSON.parse(stderr.split('\n').find((line) => line.includes('"local cloud listening"'))!) as { dataDir: string }).dataDir;
      expect(existsSync(dataDir)).toBe(true);

      end(child);
      const [code, signal] = await exited;
      expect({ code, signal, crash: /RangeError|Maximum call stack/.test(stderr) }).toEqual({ code: 0, signal: null, crash: false });
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });
});
