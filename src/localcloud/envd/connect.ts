/**
 * The server side of the Connect protocol, JSON codec only (what the e2b SDK speaks to envd).
 *
 * Written by hand: the SDK's generated service descriptors are not exported, and vendoring E2B's
 * `.proto` files to drive `@connectrpc/connect-node` would copy their code. The protocol subset is small:
 * unary (`application/json`), server streaming and client streaming (`application/connect+json`,
 * each message framed as 1 flag byte + 4-byte big-endian length + JSON; flag 0x02 ends the stream).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { readBody } from '../http.js';

/** Connect error codes and the HTTP status a unary call answers with. */
export const CONNECT_CODES = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  unauthenticated: 401,
} as const;

export type ConnectCode = keyof typeof CONNECT_CODES;

/** An RPC failure the client sees as a typed SDK error (not_found → NotFoundError, and so on). */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';

  constructor(
    readonly code: ConnectCode,
    message: string,
  ) {
    super(message);
  }
}

const FLAG_END_STREAM = 0x02;
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Encodes one enveloped message. */
export function encodeEnvelope(message: unknown, flags = 0): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(json.length, 1);
  return Buffer.concat([header, json]);
}

/** Reads enveloped messages from a byte stream, yielding each data message's parsed JSON. */
export async function* readEnvelopes(stream: AsyncIterable<Buffer | string>): AsyncGenerator<unknown> {
  let buffered = Buffer.alloc(0);
  for await (const chunk of stream) {
    buffered = Buffer.concat([buffered, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    while (buffered.length >= 5) {
      const flags = buffered.readUInt8(0);
      const length = buffered.readUInt32BE(1);
      if (length > MAX_MESSAGE_BYTES) throw new ConnectError('resource_exhausted', `message of ${length} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`);
      if (buffered.length < 5 + length) break;
      const body = buffered.subarray(5, 5 + length);
      buffered = buffered.subarray(5 + length);
      if (flags & FLAG_END_STREAM) return;
      yield parseJson(body.toString('utf8'));
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return text.length === 0 ? {} : (JSON.parse(text) as unknown);
  } catch (error) {
    throw new ConnectError('invalid_argument', `request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Answers a unary call: the handler's result as JSON, or a Connect error with its HTTP status. */
export async function serveUnary(request: IncomingMessage, response: ServerResponse, handler: (input: unknown) => Promise<unknown>): Promise<void> {
  let status = 200;
  let body: unknown;
  try {
    body = await handler(parseJson((await readBody(request)).toString('utf8')));
  } catch (error) {
    const connectError = toConnectError(error);
    status = CONNECT_CODES[connectError.code];
    body = { code: connectError.code, message: connectError.message };
  }
  const payload = JSON.stringify(body ?? {});
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  response.end(payload);
}

/** A server stream being written. */
export interface StreamWriter {
  send(message: unknown): void;
  /** Resolves when the client has gone away (or the stream was ended). */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
}

/**
 * Answers a server-streaming (or client-streaming) call. The handler sends messages; when it returns
 * the stream ends cleanly, when it throws the end frame carries the error.
 * @param keepaliveMs interval of keepalive messages (from the client's `Keepalive-Ping-Interval`), 0 for none.
 */
export async function serveStream(
  response: ServerResponse,
  handler: (writer: StreamWriter) => Promise<void>,
  options: { keepaliveMs?: number; keepaliveMessage?: unknown } = {},
): Promise<void> {
  response.writeHead(200, { 'content-type': 'application/connect+json' });
  response.flushHeaders();
  let closed = false;
  let resolveClosed!: () => void;
  const closedPromise = new Promise<void>((resolve) => (resolveClosed = resolve));
  const markClosed = (): void => {
    closed = true;
    resolveClosed();
  };
  response.on('close', markClosed);
  const writer: StreamWriter = {
    send(message) {
      if (!closed) response.write(encodeEnvelope(message));
    },
    closed: closedPromise,
    get isClosed() {
      return closed;
    },
  };
  const keepalive =
    options.keepaliveMs && options.keepaliveMessage !== undefined
      ? setInterval(() => writer.send(options.keepaliveMessage), options.keepaliveMs)
      : undefined;
  let end: unknown = {};
  try {
    await handler(writer);
  } catch (error) {
    const connectError = toConnectError(error);
    end = { error: { code: connectError.code, message: connectError.message } };
  } finally {
    if (keepalive) clearInterval(keepalive);
  }
  if (!closed) response.end(encodeEnvelope(end, FLAG_END_STREAM));
  markClosed();
}

/** Maps anything thrown by a handler to a Connect error; unexpected errors become `internal`. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'ENOENT':
      return new ConnectError('not_found', message);
    case 'EEXIST':
      return new ConnectError('already_exists', message);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new ConnectError('permission_denied', message);
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ENOTEMPTY':
    case 'EINVAL':
      return new ConnectError('invalid_argument', message);
    case 'ENOSPC':
    case 'EFBIG':
    case 'EDQUOT':
      return new ConnectError('resource_exhausted', message);
    default:
      return new ConnectError('internal', message);
  }
}

/** The keepalive interval a client asked for with `Keepalive-Ping-Interval` (seconds), in ms. */
export function keepaliveIntervalMs(request: IncomingMessage): number {
  const header = request.headers['keepalive-ping-interval'];
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

/**
 * Validates a request message. @throws ConnectError `invalid_argument` naming the field and the problem.
 */
export function parseMessage<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConnectError('invalid_argument', `${issue.path.join('.') || 'request'}: ${issue.message}`);
  }
  return parsed.data;
}

/** The single request message of a server-streaming call. @throws ConnectError when the stream carried none. */
export async function firstMessage(request: AsyncIterable<Buffer | string>, method: string): Promise<unknown> {
  for await (const message of readEnvelopes(request)) return message;
  throw new ConnectError('invalid_argument', `the request stream carried no message: send the ${method} request`);
}
