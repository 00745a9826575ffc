// The egress proxy, driven by curl as a sandbox's programs drive it (through -x, as HTTP(S)_PROXY
// would), against servers on this machine's own address (the host's loopback is refused, as a
// sandbox's direct traffic never reaches it). The proxy takes 127.0.0.1 for a sandbox's address here;
// test/conformance/network.test.ts checks the same through real routed sandboxes.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ManualClock, silentLogger } from '../../core/index.js';
import { type TestCertificates, makeTestCertificates } from '../../../test/fixtures/tls.js';
import type { EgressRules } from '../isolation/index.js';
import { EgressAuthority } from './authority.js';
import { type EgressProxy, startEgressProxy } from './proxy.js';

const NONE: EgressRules = { allowOut: [], denyOut: [] };

interface Curl {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function curl(proxyPort: number, args: readonly string[]): Promise<Curl> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${proxyPort}`, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** An address of this machine that is not its loopback. */
const HOST = Object.values(networkInterfaces())
  .flat()
  .find((address) => address?.family === 'IPv4' && !address.internal)?.address;
if (HOST === undefined) throw new Error('this machine has no IPv4 address but its loopback; the egress proxy tests need one');

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, HOST, () => resolve((server.address() as AddressInfo).port)));
}

describe('egress proxy', () => {
  let certificates: TestCertificates;
  let authority: EgressAuthority;
  /** The headers the last request to an upstream came with. */
  let seen: IncomingHttpHeaders = {};
  const echo = (name: string) => (request: { headers: IncomingHttpHeaders }, response: { end(body: string): void }) => {
    seen = request.headers;
    response.end(`${name} ${request.headers.host ?? ''}`);
  };
  let plain: Server;
  let secure: Server;
  let own: Server;
  let ports: { plain: number; secure: number; own: number };
  let proxy: EgressProxy;
  let rules: EgressRules = NONE;
  let client: 'sandbox' | 'stranger' = 'sandbox';

  beforeAll(async () => {
    certificates = makeTestCertificates('upstream.test');
    authority = new EgressAuthority(new ManualClock(Date.parse('2026-12-07T00:00:00Z')));
    plain = createServer(echo('plain'));
    secure = createHttpsServer({ cert: certificates.cert, key: certificates.key }, echo('secure'));
    own = createServer(echo('own'));
    // WebSocket echoes: each answers a message with it, the rule's header it was opened with, and its Host.
    for (const server of [secure, own]) {
      new WebSocketServer({ server }).on('connection', (socket, request) => {
        socket.on('message', (data: Buffer) => socket.send(`${String(data)} ${String(request.headers['x-test-token'] ?? '-')} ${request.headers.host ?? ''}`));
      });
    }
    ports = { plain: await listen(plain), secure: await listen(secure), own: await listen(own) };
    proxy = await startEgressProxy(
      {
        sandboxAt: (address) => (client === 'sandbox' && address === '127.0.0.1' ? { id: 'sbx1', egress: rules } : undefined),
        authority,
        ownListener: () => ({ address: HOST, port: ports.own }),
        ownHost: (host) => host.endsWith('.sandboxes.test'),
        logger: silentLogger,
        resolve: (host) => (host === 'localhost.test' ? Promise.resolve('127.0.0.1') : host.endsWith('.test') ? Promise.resolve(HOST) : Promise.reject(new Error(`getaddrinfo ENOTFOUND ${host}`))),
        upstreamCa: [certificates.ca],
      },
      '127.0.0.1',
    );
  });

  afterAll(async () => {
    await proxy.close();
    for (const server of [plain, secure, own]) server.close();
    certificates.remove();
  });

  it('answers no one but a sandbox', async () => {
    client = 'stranger';
    try {
      const result = await curl(proxy.port, [`http://a.upstream.test:${ports.plain}/`]);
      expect(result.stdout).toContain('127.0.0.1 is not a sandbox of this local cloud');
      const tunnel = await curl(proxy.port, [`https://a.upstream.test:${ports.secure}/`]);
      expect(tunnel.code).toBe(56);
      expect(tunnel.stderr).toContain('403');
    } finally {
      client = 'sandbox';
    }
  });

  it('lets a named host through a firewall that denies everything, and refuses the others saying why', async () => {
    rules = { allowOut: [], denyOut: ['0.0.0.0/0'], allowHosts: ['*.upstream.test'] };
    expect((await curl(proxy.port, [`http://a.upstream.test:${ports.plain}/`])).stdout).toBe(`plain a.upstream.test:${ports.plain}`);
    const tunnelled = await curl(proxy.port, ['--cacert', certificates.caFile, `https://b.upstream.test:${ports.secure}/`]);
    expect(tunnelled.stdout).toBe(`secure b.upstream.test:${ports.secure}`);
    const refused = await curl(proxy.port, ['-w', ' %{http_code}', `http://elsewhere.test:${ports.plain}/`]);
    expect(refused.stdout).toBe(`the egress rules of sandbox sbx1 refuse elsewhere.test: elsewhere.test (${HOST}) is denied by the sandbox's denyOut 0.0.0.0/0, and allowed by none of its allowOut entries\n 403`);
    const refusedTunnel = await curl(proxy.port, ['--cacert', certificates.caFile, `https://elsewhere.test:${ports.secure}/`]);
    expect(refusedTunnel.code).toBe(56);
  });

  it("refuses an address the rules deny, the host's loopback whatever the rules, and says when a name does not resolve", async () => {
    rules = { allowOut: [], denyOut: [`${HOST}/32`] };
    expect((await curl(proxy.port, ['-w', ' %{http_code}', `http://${HOST}:${ports.plain}/`])).stdout).toBe(`the egress rules of sandbox sbx1 refuse ${HOST}: ${HOST} is denied by the sandbox's denyOut ${HOST}/32, and allowed by none of its allowOut entries\n 403`);
    rules = { allowOut: [], denyOut: [], allowHosts: ['localhost.test'] };
    expect((await curl(proxy.port, ['-w', ' %{http_code}', `http://127.0.0.1:${ports.plain}/`])).stdout).toBe("127.0.0.1 is 127.0.0.1, the host's own loopback, which no sandbox reaches: a sandbox's localhost is its own\n 403");
    expect((await curl(proxy.port, ['-w', ' %{http_code}', `http://localhost.test:${ports.plain}/`])).stdout).toMatch(/^localhost\.test is 127\.0\.0\.1, the host's own loopback.* 403$/s);
    rules = NONE;
    expect((await curl(proxy.port, ['-w', ' %{http_code}', 'http://nowhere.invalid/'])).stdout).toBe('could not resolve nowhere.invalid: getaddrinfo ENOTFOUND nowhere.invalid\n 502');
  });

  it("sets a rule's headers on an HTTPS request, reading it with a certificate of the proxy's authority", async () => {
    rules = { ...NONE, rules: { 'a.upstream.test': [{ transform: { headers: { 'X-Test-Token': 'from-the-rule' } } }] } };
    // Trusting only the proxy's authority: the answer comes through a certificate it signed.
    const caFile = `${certificates.dir}/egress-ca.pem`;
    writeFileSync(caFile, authority.certificate);
    const result = await curl(proxy.port, ['--cacert', caFile, '-H', 'x-test-token: the-clients-own', '-H', 'X-Other: kept', `https://a.upstream.test:${ports.secure}/headers`]);
    expect(result.stdout).toBe(`secure a.upstream.test:${ports.secure}`);
    expect(seen['x-test-token']).toBe('from-the-rule');
    expect(seen['x-other']).toBe('kept');
    expect(seen['proxy-connection']).toBeUndefined();
    // Plain HTTP gets them too; a host without rules is tunnelled, its own certificate seen.
    await curl(proxy.port, [`http://a.upstream.test:${ports.plain}/`]);
    expect(seen['x-test-token']).toBe('from-the-rule');
    const untouched = await curl(proxy.port, ['--cacert', caFile, `https://b.upstream.test:${ports.secure}/`]);
    expect(untouched.code).toBe(60);
  });

  it("reads a connection to an address with rules, with a certificate for the address, and checks the upstream's for it", async () => {
    rules = { ...NONE, rules: { [HOST]: [{ transform: { headers: { 'X-Test-Token': 'by-address' } } }] } };
    const caFile = `${certificates.dir}/egress-ca.pem`;
    writeFileSync(caFile, authority.certificate);
    // curl trusts the proxy's certificate for the address; the upstream's is for *.upstream.test, not the address, so the proxy refuses it.
    const result = await curl(proxy.port, ['--cacert', caFile, '-w', ' %{http_code}', `https://${HOST}:${ports.secure}/`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^could not reach ${HOST.replaceAll('.', '\\.')}:${ports.secure}: .*IP: ${HOST.replaceAll('.', '\\.')} is not in the cert's list.*\n 502$`, 's'));
  });

  it("sends a name of this cloud's own sandboxes to its own listener, Host kept", async () => {
    rules = NONE;
    const caFile = `${certificates.dir}/egress-ca.pem`;
    const result = await curl(proxy.port, ['--cacert', caFile, 'https://8080-abc.sandboxes.test/headers']);
    expect(result.stdout).toBe('own 8080-abc.sandboxes.test');
  });

  it("joins a WebSocket through a connection it reads, the rule's header set on the upgrade, to a host and to the cloud's own sandboxes", async () => {
    rules = { ...NONE, rules: { 'a.upstream.test': [{ transform: { headers: { 'X-Test-Token': 'from-the-rule' } } }] } };
    /** What a WebSocket to wss://host:port through the proxy answers to `hello`. */
    const echo = async (host: string, port: number): Promise<string> => {
      const tunnel = connect(proxy.port, '127.0.0.1');
      await once(tunnel, 'connect');
      tunnel.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
      const [answer] = (await once(tunnel, 'data')) as [Buffer];
      expect(String(answer)).toBe('HTTP/1.1 200 Connection Established\r\n\r\n');
      const secured = tlsConnect({ socket: tunnel, servername: host, ca: authority.certificate });
      await once(secured, 'secureConnect');
      const socket = new WebSocket(`wss://${host}:${port}/`, { createConnection: () => secured });
      try {
        await once(socket, 'open');
        socket.send('hello');
        const [data] = (await once(socket, 'message')) as [Buffer];
        return String(data);
      } finally {
        socket.close();
      }
    };
    expect(await echo('a.upstream.test', ports.secure)).toBe(`hello from-the-rule a.upstream.test:${ports.secure}`);
    expect(await echo('8080-abc.sandboxes.test', 443)).toBe('hello - 8080-abc.sandboxes.test');
  });

  it('sends the host it judged as Host, whatever Host the request names', async () => {
    rules = { allowOut: [], denyOut: ['0.0.0.0/0'], allowHosts: ['*.sandboxes.test', 'a.upstream.test'] };
    const caFile = `${certificates.dir}/egress-ca.pem`;
    // Inside a tunnel to one of the cloud's sandboxes, a Host naming the cloud's own API is not sent on.
    expect((await curl(proxy.port, ['--cacert', caFile, '-H', 'Host: 127.0.0.1:7070', 'https://8080-abc.sandboxes.test/']).then((one) => one.stdout))).toBe('own 8080-abc.sandboxes.test');
    expect((await curl(proxy.port, ['-H', 'Host: elsewhere.test', `http://a.upstream.test:${ports.plain}/`])).stdout).toBe(`plain a.upstream.test:${ports.plain}`);
  });
});
