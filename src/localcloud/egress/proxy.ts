// The local cloud's egress proxy: what E2B's egress proxy does for a sandbox's outbound HTTP and
// HTTPS, for sandboxes whose `network` names hosts (`allowOut: ['api.example.com']`) or per-host rules.
// Such a sandbox's processes are given it as HTTP_PROXY and HTTPS_PROXY; its firewall still filters
// every address, so a program that ignores the proxy reaches only what the addresses allow.
//
// A request comes as `CONNECT host:port` (HTTPS) or with an absolute URL (plain HTTP). The sandbox is
// known by the address it comes from; the proxy judges the host by its name and by the address it
// resolves to, and refuses with 403 and why. A host with rules to apply, or one of this cloud's own
// sandbox names, is read: the proxy answers its TLS with a certificate its authority signs (which the
// sandbox trusts), sets the rules' headers, and sends the request on. Anything else is a byte tunnel.
// Written on node:http, node:net and node:tls rather than with a proxy library: none of those on npm
// both intercepts TLS per host and lets the caller judge each CONNECT by where it came from.
import { lookup as dnsLookup } from 'node:dns/promises';
import { type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type AddressInfo, type Socket, connect, isIPv4 } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Logger } from '../../core/index.js';
import type { EgressRules } from '../isolation/index.js';
import type { EgressAuthority } from './authority.js';
import { headersFor, verdictOf } from './policy.js';

/** What the proxy needs of a sandbox. */
export interface EgressClient {
  readonly id: string;
  readonly egress: EgressRules;
}

export interface EgressProxyOptions {
  /** The running sandbox whose address (on its routed network) is `address`; undefined for any other. */
  readonly sandboxAt: (address: string) => EgressClient | undefined;
  readonly authority: EgressAuthority;
  /**
   * This cloud's plain HTTP listener, where a name of one of its own sandboxes' ports
   * (`<port>-<sandboxId>.<domain>`, which `ownHost` recognises) is served.
   */
  readonly ownListener: () => { readonly address: string; readonly port: number };
  readonly ownHost: (host: string) => boolean;
  readonly logger: Logger;
  /** Resolves a host name to the IPv4 address the proxy connects to. @default the host's resolver */
  readonly resolve?: (host: string) => Promise<string>;
  /** Certificates trusted for hosts the proxy reads, besides Node's own (for tests). */
  readonly upstreamCa?: readonly string[];
}

export interface EgressProxy {
  readonly port: number;
  close(): Promise<void>;
}

/** Where a request goes, once judged. */
interface Destination {
  readonly client: EgressClient;
  readonly host: string;
  /** The port the request asked for. */
  readonly asked: number;
  /** The port connected to: the one asked for, or this cloud's for its own sandboxes. */
  readonly port: number;
  /** The address connected to: the host's own, or this cloud's for its own sandboxes. */
  readonly address: string;
  readonly own: boolean;
  /** Headers the sandbox's rules set on its requests. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Headers that name a connection, not the request (RFC 9110 §7.6.1), the proxy's own, and Host, which
 * is always the host judged: a request may not name another than the one it was allowed for.
 */
const NOT_SENT = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function resolveIPv4(host: string): Promise<string> {
  return (await dnsLookup(host, { family: 4 })).address;
}

/** `host:port` of a CONNECT; the port defaults to 443. @throws Refusal 400 when it is not one. */
function authorityOf(target: string | undefined): { readonly host: string; readonly port: number } {
  const match = /^\[?([^\]\s]+?)\]?(?::(\d{1,5}))?$/.exec(target ?? '');
  const port = Number(match?.[2] ?? 443);
  if (match === null || port < 1 || port > 65_535) throw new Refusal(400, `'${target ?? ''}' is not host:port`);
  return { host: match[1]!, port };
}

/**
 * The request's headers less those {@link NOT_SENT}, with Host the judged host (its port when not the
 * scheme's own), and the rules' headers set over them (by name, whatever its case).
 */
function sentHeaders(request: IncomingMessage, destination: Destination, tls: boolean, upgrade = false): Array<[string, string]> {
  const set = new Map(Object.entries(destination.headers).map(([name, value]) => [name.toLowerCase(), [name, value] as const]));
  const name = destination.host.includes(':') ? `[${destination.host}]` : destination.host;
  const headers: Array<[string, string]> = [['Host', destination.asked === (tls ? 443 : 80) ? name : `${name}:${destination.asked}`]];
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    const header = request.rawHeaders[i]!;
    const lower = header.toLowerCase();
    // An upgrade keeps its connection headers: they ask the server to upgrade.
    const kept = upgrade && (lower === 'connection' || lower === 'upgrade');
    if ((kept || !NOT_SENT.has(lower)) && !set.has(lower)) headers.push([header, request.rawHeaders[i + 1]!]);
  }
  for (const [name, value] of set.values()) headers.push([name, value]);
  return headers;
}

function refuseSocket(socket: Duplex, status: number, message: string): void {
  const body = `${message}\n`;
  const reason = status === 403 ? 'Forbidden' : status === 400 ? 'Bad Request' : 'Bad Gateway';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

function refuseResponse(response: ServerResponse, status: number, message: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
  response.end(`${message}\n`);
}

/** The status and message a failed judgement is answered with: a refusal's own, else 502. */
function answerOf(error: unknown): [number, string] {
  return [error instanceof Refusal ? error.status : 502, (error as Error).message];
}

const NOT_ABSOLUTE = "this is the local cloud's egress proxy: send it absolute http:// URLs, or CONNECT host:port for https";

/** The URL a request through the proxy names whole, when its scheme is one of `schemes`; else undefined. */
function absoluteUrl(request: IncomingMessage, schemes: readonly string[]): URL | undefined {
  try {
    const url = new URL(request.url ?? '');
    return schemes.includes(url.protocol) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** A URL's host as judged: without an IPv6 literal's brackets. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** The address a socket came from, as IPv4 where it is one. */
function remoteOf(socket: Socket): string {
  return (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

/**
 * Starts the proxy on `host`:`port` (0: the OS picks). It answers sandboxes only: a connection from any
 * other address is refused at once, so listening on every address does not make it an open proxy.
 */
export async function startEgressProxy(options: EgressProxyOptions, host = '0.0.0.0', port = 0): Promise<EgressProxy> {
  const resolve = options.resolve ?? resolveIPv4;
  /** Where the requests read from an intercepted connection go. */
  const intercepted = new WeakMap<Socket, Destination>();

  const judge = async (from: string, host: string, port: number): Promise<Destination> => {
    const client = options.sandboxAt(from);
    if (client === undefined) throw new Refusal(403, `${from} is not a sandbox of this local cloud: its egress proxy serves its sandboxes only`);
    const own = options.ownHost(host);
    const listener = own ? options.ownListener() : undefined;
    let address = listener?.address ?? '';
    if (listener === undefined) {
      try {
        address = isIPv4(host) ? host : await resolve(host);
      } catch (error) {
        throw new Refusal(502, `could not resolve ${host}: ${(error as Error).message}`);
      }
    }
    // The host's loopback is not the sandbox's (which has its own): a program in it never reaches the
    // host's 127.0.0.1 services directly, so not through the proxy either.
    if (!own && (address.startsWith('127.') || address.startsWith('0.'))) throw new Refusal(403, `${host} is ${address}, the host's own loopback, which no sandbox reaches: a sandbox's localhost is its own`);
    const verdict = verdictOf(client.egress, host, address);
    if (!verdict.allowed) throw new Refusal(403, `the egress rules of sandbox ${client.id} refuse ${host}: ${verdict.why}`);
    return { client, host, asked: port, port: listener?.port ?? port, address, own, headers: headersFor(client.egress, host, address) };
  };

  /** How the proxy checks a host's certificate when it reads a connection to it: by its name, against Node's authorities (and the test's). */
  const upstreamTls = (destination: Destination): { servername?: string; ca?: string[] } => ({
    ...(isIPv4(destination.host) ? {} : { servername: destination.host }),
    ...(options.upstreamCa ? { ca: [...options.upstreamCa] } : {}),
  });

  /**
   * Connects to `destination` (over TLS with `secure`) for the sandbox's `socket`, and calls `opened`
   * once connected; a failure to connect is answered with 502 and why, one later ends the socket, and
   * the socket's end ends the connection.
   */
  const dial = (destination: Destination, secure: boolean, socket: Duplex, opened: (upstream: Socket) => void): void => {
    const upstream = secure ? tlsConnect({ host: destination.address, port: destination.port, ...upstreamTls(destination) }) : connect({ host: destination.address, port: destination.port });
    let open = false;
    upstream.once(secure ? 'secureConnect' : 'connect', () => {
      open = true;
      opened(upstream);
    });
    upstream.on('error', (error: Error) => (open ? socket.destroy() : refuseSocket(socket, 502, `could not reach ${destination.host}:${destination.port}: ${error.message}`)));
    socket.on('error', () => upstream.destroy());
    socket.on('close', () => upstream.destroy());
  };

  /** Sends a request (read from the sandbox) on to its destination, and the answer back. */
  const forward = (request: IncomingMessage, response: ServerResponse, destination: Destination, path: string, tls: boolean): void => {
    // Node takes an array of pairs flattened, which keeps repeated headers and their names' case.
    const headers = sentHeaders(request, destination, tls).flat() as unknown as OutgoingHttpHeaders;
    const common = { host: destination.address, port: destination.port, method: request.method, path, headers };
    const upstream =
      tls && !destination.own
        ? httpsRequest({ ...common, ...upstreamTls(destination) })
        : httpRequest(common);
    upstream.on('response', (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', (error) => refuseResponse(response, 502, `could not reach ${destination.host}:${destination.port}: ${error.message}`));
    response.once('close', () => upstream.destroy());
    request.pipe(upstream);
  };

  /** Joins an upgrade (a WebSocket) read from the sandbox to its destination: its head sent on, with the rules' headers, then bytes both ways. */
  const forwardUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer, destination: Destination, path: string, tls: boolean): void => {
    dial(destination, tls && !destination.own, socket, (upstream) => {
      const lines = [`${request.method ?? 'GET'} ${path} HTTP/1.1`, ...sentHeaders(request, destination, tls, true).map(([name, value]) => `${name}: ${value}`)];
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
  };

  // Requests read from intercepted TLS connections: their destination was judged at CONNECT.
  const reader = createServer((request, response) => {
    const destination = intercepted.get(request.socket);
    if (destination === undefined) return refuseResponse(response, 502, 'no destination for this connection');
    forward(request, response, destination, request.url ?? '/', true);
  });
  reader.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const destination = intercepted.get(request.socket);
    if (destination === undefined) return refuseSocket(socket, 502, 'no destination for this connection');
    forwardUpgrade(request, socket, head, destination, request.url ?? '/', true);
  });
  reader.on('clientError', (_error, socket) => socket.destroy());

  const server: Server = createServer((request, response) => {
    // Plain HTTP through a proxy: the request names its URL whole.
    const url = absoluteUrl(request, ['http:']);
    if (url === undefined) return refuseResponse(response, 400, NOT_ABSOLUTE);
    judge(remoteOf(request.socket), hostOf(url), Number(url.port || 80)).then(
      (destination) => forward(request, response, destination, `${url.pathname}${url.search}`, false),
      (error: unknown) => refuseResponse(response, ...answerOf(error)),
    );
  });

  // Tunnels leave the server's hands once CONNECT is answered: they are kept here, for close.
  const tunnels = new Set<Socket>();
  server.on('connect', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    socket.on('error', () => socket.destroy());
    let target: { host: string; port: number };
    try {
      target = authorityOf(request.url);
    } catch (error) {
      return refuseSocket(socket, ...answerOf(error));
    }
    judge(remoteOf(socket), target.host, target.port).then(
      (destination) => {
        if (head.length > 0) socket.unshift(head);
        const read = destination.own || Object.keys(destination.headers).length > 0;
        if (read) {
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          const tls = new TLSSocket(socket, { isServer: true, secureContext: options.authority.contextFor(destination.host) });
          tls.on('error', () => tls.destroy());
          intercepted.set(tls, destination);
          reader.emit('connection', tls);
          return;
        }
        dial(destination, false, socket, (upstream) => {
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          upstream.pipe(socket);
          socket.pipe(upstream);
        });
      },
      (error: unknown) => refuseSocket(socket, ...answerOf(error)),
    );
  });
  // A plain-HTTP upgrade through the proxy (ws://): judged as a request is.
  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = absoluteUrl(request, ['http:', 'ws:']);
    if (url === undefined) return refuseSocket(socket, 400, NOT_ABSOLUTE);
    judge(remoteOf(socket), hostOf(url), Number(url.port || 80)).then(
      (destination) => forwardUpgrade(request, socket, head, destination, `${url.pathname}${url.search}`, false),
      (error: unknown) => refuseSocket(socket, ...answerOf(error)),
    );
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done();
    });
  });
  options.logger.debug({ port: (server.address() as AddressInfo).port }, 'egress proxy listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        for (const socket of tunnels) socket.destroy();
        server.closeAllConnections();
        reader.closeAllConnections();
        server.close(() => done());
      }),
  };
}
