// A sandbox's own ports, reached through the local cloud's one port, as E2B reaches them through
// `https://<port>-<sandboxId>.<domain>` (the SDK's `getHost(port)`): a server a program starts in its
// sandbox answers there. Written here rather than with a proxy library: it forwards one request as it
// came (and pipes an upgraded connection both ways), which node:http and node:net do in a few lines.
import { type IncomingMessage, type ServerResponse, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { sendJson } from './http.js';

/** Where a sandbox's port is: an address the host reaches it on. */
export interface PortTarget {
  readonly sandboxId: string;
  readonly address: string;
  readonly port: number;
  /** The Host to send instead of the request's (the sandbox's `maskRequestHost`, its `${PORT}` replaced). */
  readonly host?: string;
}

/** The Host a sandbox's `maskRequestHost` gives for a request to `port`: E2B's `${PORT}` replaced by it. */
export function maskedHost(mask: string, port: number): string {
  return mask.replaceAll('${PORT}', String(port));
}

const HOST_FORM = /^(\d{1,5})-([a-z0-9]+)\.[^\s]+$/i;

/**
 * The sandbox port a Host header names in E2B's form `<port>-<sandboxId>.<domain>` (what `getHost`
 * gives), or undefined when it is not of that form.
 */
export function sandboxPortOf(host: string | undefined): { readonly port: number; readonly sandboxId: string } | undefined {
  const match = host === undefined ? null : HOST_FORM.exec(host);
  if (match === null) return undefined;
  const port = Number(match[1]);
  return port >= 1 && port <= 65_535 ? { port, sandboxId: match[2] as string } : undefined;
}

/** The local cloud's own headers: which sandbox and port, and the token that opens a private one. Not sent on. */
const ROUTING_HEADERS = new Set(['e2b-sandbox-id', 'e2b-sandbox-port', 'e2b-traffic-access-token']);
/** Headers that name a connection, not the request (RFC 9110 §7.6.1), and the routing headers. */
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', ...ROUTING_HEADERS]);

/**
 * The request's headers as they came (their names' case kept), less those in `dropped`, as name and
 * value pairs; `Host` written as E2B's proxy writes it: with a capital, and the sandbox's mask instead
 * where it has one.
 */
function sentHeaders(request: IncomingMessage, target: PortTarget, dropped: ReadonlySet<string>): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i] as string;
    const value = request.rawHeaders[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'host') headers.push(['Host', target.host ?? value]);
    else if (!dropped.has(lower)) headers.push([name, value]);
  }
  return headers;
}

/** E2B's answer for a port nothing listens on, or a sandbox that cannot be reached. */
function unreachable(response: ServerResponse, target: PortTarget, why: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendJson(response, 502, { code: 502, sandboxId: target.sandboxId, port: target.port, message: `The sandbox is running but port is not open: ${why}` });
}

/** Forwards `request` to the sandbox's port and its answer back; 502 (JSON) when nothing answers there. */
export function forwardToPort(request: IncomingMessage, response: ServerResponse, target: PortTarget): void {
  const upstream = httpRequest({ host: target.address, port: target.port, method: request.method, path: request.url, headers: sentHeaders(request, target, NOT_FORWARDED).flat() });
  upstream.on('response', (answer) => {
    response.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
    answer.pipe(response);
  });
  upstream.on('error', (error) => unreachable(response, target, error.message));
  // The client gone, the sandbox's side goes too.
  response.once('close', () => upstream.destroy());
  request.pipe(upstream);
}

/** Joins an upgraded connection (a WebSocket) to the sandbox's port: the request's head is sent on, then bytes flow both ways. */
export function forwardUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, target: PortTarget): void {
  const upstream = connect({ host: target.address, port: target.port }, () => {
    // An upgrade keeps its connection headers: they ask the sandbox's server to upgrade.
    const lines = [`${request.method ?? 'GET'} ${request.url ?? '/'} HTTP/1.1`, ...sentHeaders(request, target, ROUTING_HEADERS).map(([name, value]) => `${name}: ${value}`)];
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on('error', () => socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  socket.on('error', () => upstream.destroy());
  socket.on('close', () => upstream.destroy());
}
