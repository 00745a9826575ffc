import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as tlsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox } from 'e2b';
import { startLocalCloud, type LocalCloud } from '../../src/localcloud/index.js';
import { silentLogger } from '../../src/core/index.js';
import { describeLocal, useBackend } from '../fixtures/backend.js';
import { waitFor } from '../fixtures/localcloud.js';
import { makeTestCertificates, type TestCertificates } from '../fixtures/tls.js';

/** Why these run on the local cloud only: they reach a sandbox's port through the local cloud's own port; E2B cloud serves getHost's https name. */
const LOCAL_ONLY = "a sandbox's port through the local cloud's own port (a Host of E2B's form, or the SDK's routing headers); on E2B cloud getHost's https URL is served by E2B's edge";
const backend = useBackend();
const cloud = () => backend().local;

/**
 * A port for a server in a sandbox on the host's network, unlikely to be taken by another test run,
 * and below Linux's ephemeral ports (32768 up), which any outgoing connection on the host may hold.
 */
const HOST_PORT = 20_000 + (process.pid % 10_000);

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** GET `path` from the local cloud's port with `headers` (a Host of E2B's form, or the routing headers). */
function get(path: string, headers: Record<string, string>): Promise<Answer> {
  const url = new URL(cloud().sandboxUrl);
  return new Promise((resolve, reject) => {
    const sent = request({ host: url.hostname, port: url.port, path, headers }, answerOf(resolve));
    sent.on('error', reject);
    sent.end();
  });
}

/** Reads an answer's status, headers and body. */
function answerOf(resolve: (answer: Answer) => void): (answer: IncomingMessage) => void {
  return (answer) => {
    let body = '';
    answer.setEncoding('utf8');
    answer.on('data', (chunk: string) => (body += chunk));
    answer.on('end', () => resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body }));
  };
}

/** The Host the SDK's getHost(port) gives with E2B_DOMAIN set to the local cloud's `localhost:<port>`. */
function hostOf(sandbox: Sandbox, port: number): string {
  return `${port}-${sandbox.sandboxId}.localhost:${new URL(cloud().sandboxUrl).port}`;
}

/** Starts a Python HTTP server on `port` in the sandbox, serving a folder with one file, and waits until the local cloud reaches it (sending `headers`). */
async function serveFiles(sandbox: Sandbox, port: number, headers: Record<string, string> = {}): Promise<void> {
  await sandbox.files.write('/home/user/site/hello.txt', 'hello from the sandbox');
  await sandbox.commands.run(`python3 -m http.server ${port} --bind 0.0.0.0 --directory /home/user/site`, { background: true });
  await waitFor(async () => (await get('/hello.txt', { host: hostOf(sandbox, port), ...headers })).status === 200, `the server on port ${port}`, 20_000);
}

describeLocal("a sandbox's own ports, reached through the local cloud", LOCAL_ONLY, () => {
  it('answers a Host of E2B getHost form, and the routing headers, from the server the sandbox runs; 502 in E2B words for a closed port and a gone sandbox', async () => {
    const sandbox = await Sandbox.create('base', cloud().connection);
    try {
      await serveFiles(sandbox, HOST_PORT);
      const byHost = await get('/hello.txt', { host: hostOf(sandbox, HOST_PORT) });
      expect([byHost.status, byHost.body]).toEqual([200, 'hello from the sandbox']);
      expect(byHost.headers.server).toMatch(/SimpleHTTP/);
      const byHeaders = await get('/hello.txt', { 'e2b-sandbox-id': sandbox.sandboxId, 'e2b-sandbox-port': String(HOST_PORT) });
      expect([byHeaders.status, byHeaders.body]).toEqual([200, 'hello from the sandbox']);

      const closed = await get('/', { host: hostOf(sandbox, HOST_PORT + 1) });
      expect(closed.status).toBe(502);
      expect(JSON.parse(closed.body)).toMatchObject({ code: 502, sandboxId: sandbox.sandboxId, port: HOST_PORT + 1, message: expect.stringMatching(/^The sandbox is running but port is not open: /) as unknown });
    } finally {
      await sandbox.kill();
    }
    const gone = await get('/hello.txt', { host: hostOf(sandbox, HOST_PORT) });
    expect([gone.status, JSON.parse(gone.body)]).toEqual([502, { code: 502, sandboxId: sandbox.sandboxId, message: 'The sandbox was not found' }]);
  }, 60_000);

  it("reaches a routed sandbox's port at its own address, where two sandboxes each serve the same port", async () => {
    // Egress rules give each sandbox a routed network of its own.
    const both = await Promise.all([0, 1].map(() => Sandbox.create('base', { ...cloud().connection, network: { denyOut: [] } })));
    const [one, two] = both as [Sandbox, Sandbox];
    try {
      await Promise.all(both.map((sandbox) => serveFiles(sandbox, 8000)));
      await two.files.write('/home/user/site/hello.txt', 'hello from the second');
      expect((await get('/hello.txt', { host: hostOf(one, 8000) })).body).toBe('hello from the sandbox');
      expect((await get('/hello.txt', { host: hostOf(two, 8000) })).body).toBe('hello from the second');
    } finally {
      await Promise.all(both.map((sandbox) => sandbox.kill()));
    }
  }, 60_000);

  it('wakes a paused sandbox created with lifecycle autoResume when a request comes for it; one without stays paused and says so', async () => {
    const [waking, sleeping] = await Promise.all([
      Sandbox.create('base', { ...cloud().connection, lifecycle: { onTimeout: 'pause', autoResume: true } }),
      Sandbox.create('base', { ...cloud().connection, lifecycle: { onTimeout: 'pause' } }),
    ]);
    try {
      expect((await waking.getInfo()).lifecycle).toEqual({ onTimeout: 'pause', autoResume: true });
      await Promise.all([serveFiles(waking, HOST_PORT + 3), serveFiles(sleeping, HOST_PORT + 4)]);
      await Promise.all([waking.pause(), sleeping.pause()]);
      expect((await waking.getInfo()).state).toBe('paused');
      // The server kept its memory in the pause: the request wakes the sandbox and is answered.
      expect(await get('/hello.txt', { host: hostOf(waking, HOST_PORT + 3) })).toMatchObject({ status: 200, body: 'hello from the sandbox' });
      expect((await waking.getInfo()).state).toBe('running');
      const paused = await get('/hello.txt', { host: hostOf(sleeping, HOST_PORT + 4) });
      expect([paused.status, JSON.parse(paused.body)]).toEqual([502, { code: 502, sandboxId: sleeping.sandboxId, message: 'The sandbox is paused' }]);
      expect((await sleeping.getInfo()).state).toBe('paused');
    } finally {
      await Promise.all([waking.kill(), sleeping.kill()]);
    }
  }, 60_000);

  it('refuses autoResume without a pause on timeout, naming the field, and creates nothing', async () => {
    const before = cloud().sandboxes.list().length;
    const response = await fetch(`${cloud().apiUrl}/sandboxes`, {
      method: 'POST',
      headers: { 'x-api-key': cloud().apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ templateID: 'base', autoResume: { enabled: true } }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/^body\.autoResume: a sandbox wakes only from a pause: set autoPause/);
    expect(cloud().sandboxes.list()).toHaveLength(before);
  });

  it('serves the ports of a sandbox created with allowPublicTraffic false only to requests with its traffic access token', async () => {
    const sandbox = await Sandbox.create('base', { ...cloud().connection, network: { allowPublicTraffic: false } });
    try {
      const token = sandbox.trafficAccessToken as string;
      expect(token).toMatch(/\S/);
      expect((await sandbox.getInfo()).network).toMatchObject({ allowPublicTraffic: false });
      await serveFiles(sandbox, HOST_PORT + 5, { 'e2b-traffic-access-token': token });
      const refused = await get('/hello.txt', { host: hostOf(sandbox, HOST_PORT + 5) });
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 403, message: expect.stringMatching(/^The sandbox does not allow public traffic/) as unknown });
      expect((await get('/hello.txt', { host: hostOf(sandbox, HOST_PORT + 5), 'e2b-traffic-access-token': 'wrong' })).status).toBe(403);
      expect(await get('/hello.txt', { host: hostOf(sandbox, HOST_PORT + 5), 'e2b-traffic-access-token': token })).toMatchObject({ status: 200, body: 'hello from the sandbox' });
    } finally {
      await sandbox.kill();
    }
  }, 60_000);

  it("sends a sandbox's ports the Host its network.maskRequestHost names, ${PORT} replaced; refuses one that is not a host, naming the field", async () => {
    const sandbox = await Sandbox.create('base', { ...cloud().connection, network: { maskRequestHost: 'custom-host.example.com:${PORT}' } });
    try {
      expect((await sandbox.getInfo()).network).toMatchObject({ maskRequestHost: 'custom-host.example.com:${PORT}' });
      await sandbox.files.write('/home/user/host.cjs', `require('node:http').createServer((q, r) => r.end(q.headers.host)).listen(${HOST_PORT + 6}, '0.0.0.0');`);
      await sandbox.commands.run('node /home/user/host.cjs', { background: true });
      await waitFor(async () => (await get('/', { host: hostOf(sandbox, HOST_PORT + 6) })).status === 200, 'the server that answers its Host', 20_000);
      expect((await get('/', { host: hostOf(sandbox, HOST_PORT + 6) })).body).toBe(`custom-host.example.com:${HOST_PORT + 6}`);
    } finally {
      await sandbox.kill();
    }
    const before = cloud().sandboxes.list().length;
    const refused = await fetch(`${cloud().apiUrl}/sandboxes`, {
      method: 'POST',
      headers: { 'x-api-key': cloud().apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ templateID: 'base', network: { maskRequestHost: 'evil\r\nx-injected: 1' } }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toMatch(/network\.maskRequestHost.*must be a host name or address/);
    expect(cloud().sandboxes.list()).toHaveLength(before);
  }, 60_000);

  it("joins an upgraded connection (a WebSocket's) to the sandbox's port, both ways", async () => {
    const sandbox = await Sandbox.create('base', cloud().connection);
    try {
      // A server that accepts any upgrade and echoes what it is sent.
      const script = `require('node:http').createServer((q, r) => r.end('up')).on('upgrade', (q, socket) => { socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n'); socket.pipe(socket); }).listen(${HOST_PORT + 2}, '0.0.0.0');`;
      await sandbox.files.write('/home/user/echo.cjs', script);
      await sandbox.commands.run('node /home/user/echo.cjs', { background: true });
      await waitFor(async () => (await get('/', { host: hostOf(sandbox, HOST_PORT + 2) })).body === 'up', 'the echo server', 20_000);
      const url = new URL(cloud().sandboxUrl);
      const echoed = await new Promise<string>((resolve, reject) => {
        const sent = request({ host: url.hostname, port: url.port, path: '/', headers: { host: hostOf(sandbox, HOST_PORT + 2), connection: 'Upgrade', upgrade: 'echo' } });
        sent.on('upgrade', (answer, socket: Socket) => {
          expect(answer.statusCode).toBe(101);
          socket.setEncoding('utf8');
          let seen = '';
          socket.on('data', (chunk: string) => {
            seen += chunk;
            if (seen.length >= 9) {
              socket.destroy();
              resolve(seen);
            }
          });
          socket.write('ping pong');
        });
        sent.on('error', reject);
        sent.end();
      });
      expect(echoed).toBe('ping pong');
    } finally {
      await sandbox.kill();
    }
  }, 60_000);
});

describeLocal("a sandbox's ports under the local cloud's own domain, over HTTPS as on E2B", LOCAL_ONLY, () => {
  const DOMAIN = 'sandbox.test';
  let certificates: TestCertificates | undefined;
  let named: LocalCloud | undefined;
  beforeAll(async () => {
    certificates = makeTestCertificates(DOMAIN);
    named = await startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 0, domain: DOMAIN, tls: { port: 0, cert: certificates.cert, key: certificates.key } });
  });
  afterAll(async () => {
    await named?.close();
    certificates?.remove();
  });

  /** GET `path` over HTTPS from the cloud's TLS port, for the name `host` (its SNI and Host), trusting the test authority. */
  function getTls(host: string, path: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const sent = tlsRequest({ host: '127.0.0.1', port: named!.tlsPort, servername: host, path, headers: { host }, ca: certificates!.ca }, answerOf(resolve));
      sent.on('error', reject);
      sent.end();
    });
  }

  it("names sandboxes under its domain in the SDK's getHost, and serves their ports and envd over HTTPS with a certificate for *.<domain>", async () => {
    const sandbox = await Sandbox.create('base', named!.connection);
    try {
      expect(sandbox.sandboxDomain).toBe(DOMAIN);
      const host = sandbox.getHost(HOST_PORT + 7);
      expect(host).toBe(`${HOST_PORT + 7}-${sandbox.sandboxId}.${DOMAIN}`);
      await sandbox.files.write('/home/user/site/hello.txt', 'hello over https');
      await sandbox.commands.run(`python3 -m http.server ${HOST_PORT + 7} --bind 0.0.0.0 --directory /home/user/site`, { background: true });
      await waitFor(async () => (await getTls(host, '/hello.txt')).status === 200, 'the server over https', 20_000);
      expect(await getTls(host, '/hello.txt')).toMatchObject({ status: 200, body: 'hello over https' });
      // envd under its own port's name, as the SDK reaches it on E2B when no sandboxUrl is set.
      expect((await getTls(sandbox.getHost(49983), '/health')).status).toBeLessThan(300);
      expect((await Sandbox.connect(sandbox.sandboxId, named!.connection)).sandboxDomain).toBe(DOMAIN);
    } finally {
      await sandbox.kill();
    }
  }, 60_000);

  it('refuses a domain that is not a DNS name, a certificate it cannot use and a TLS port it cannot take, naming the option', async () => {
    await expect(startLocalCloud({ logger: silentLogger, domain: 'Not A Domain' })).rejects.toThrow(/domain: must be a DNS name/);
    await expect(startLocalCloud({ logger: silentLogger, tls: { cert: certificates!.cert, key: 'not a key' } })).rejects.toThrow(/^tls: the certificate and key could not be used \(.*\): give a PEM certificate/);
    await expect(startLocalCloud({ logger: silentLogger, metricsIntervalMs: 0, warmPoolSize: 0, tls: { port: named!.tlsPort!, cert: certificates!.cert, key: certificates!.key } })).rejects.toThrow(/tls\.port: could not listen on/);
  });
});
