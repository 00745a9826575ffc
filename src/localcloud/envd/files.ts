/**
 * envd's plain HTTP file transfer: `GET /files` streams a file out of a sandbox, `POST /files` writes
 * files into it from a multipart/form-data body (the SDK's default) or a raw application/octet-stream
 * body, either of them optionally gzip-encoded.
 */
import { constants } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { SandboxUser } from '../sandboxes/index.js';
import { CONNECT_CODES, ConnectError } from './connect.js';
import type { EnvdHandler } from './context.js';
import { ACCESS, atEntry, checkChange, fileError, locate, nameOf, pathOf, permits, readerOf, requireWritable, writerOf, type SandboxFilesystem, type SandboxLocation } from './entry.js';
import { metadataFromHeaders, replaceMetadata, type FileMetadata } from './metadata.js';
import { sendJson } from '../http.js';

/** What `POST /files` answers for each file written (envd's `EntryInfo` of its HTTP API). */
export interface WriteInfo {
  readonly name: string;
  readonly type: 'file';
  readonly path: string;
  /** The metadata the upload gave the file, when it gave any. */
  readonly metadata?: FileMetadata;
}

/** HTTP status for a full disk, which the SDK turns into `NotEnoughSpaceError`. */
const INSUFFICIENT_STORAGE = 507;
/** Files that report size 0 (as /proc files do) are read whole, up to this many bytes. */
const MAX_UNSIZED_FILE_BYTES = 16 * 1024 * 1024;
/** Longest header block of one multipart part. */
const MAX_PART_HEADER_BYTES = 64 * 1024;


/** Answers with envd's error JSON `{code, message}` (code is the HTTP status), or cuts a response already under way. */
function sendError(response: ServerResponse, error: ConnectError): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const status = error.code === 'resource_exhausted' ? INSUFFICIENT_STORAGE : CONNECT_CODES[error.code];
  sendJson(response, status, { code: status, message: error.message });
}

/** Turns a failure into a Connect error about `sandboxPath`; a broken gzip body is the client's to fix. */
function failureOf(error: unknown, sandboxPath: string): ConnectError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new ConnectError('invalid_argument', `the request body is not valid gzip (${code}): compress it with gzip, or send it without Content-Encoding`);
  }
  return fileError(error, sandboxPath);
}

/** `GET /files?path=&username=`: the file's bytes, gzip-encoded when the client accepts it. */
export const handleFilesDownload: EnvdHandler = async ({ sandbox, user, request, response, query }) => {
  const path = query.get('path') ?? '';
  let sandboxPath = path;
  try {
    const location = locate(sandbox, path, user, true);
    sandboxPath = location.sandboxPath;
    if (sandboxPath === '/proc' || sandboxPath.startsWith('/proc/')) {
      // This server reads as root with every capability; /proc (kcore, kmsg, …) must be read by the sandbox's own processes.
      throw new ConnectError('permission_denied', `${sandboxPath} can only be read from inside the sandbox: run \`cat ${sandboxPath}\` with sandbox.commands.run`);
    }
    const reader = readerOf(sandbox, user, location);
    await atEntry(location, { access: reader }, async (entryPath) => {
      // O_NONBLOCK: opening a FIFO must not wait for a writer.
      const handle = await open(entryPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const stats = await handle.stat();
        if (stats.isDirectory()) throw new ConnectError('invalid_argument', `${sandboxPath} is a directory: give the path of a file, or list the directory with sandbox.files.list`);
        if (!stats.isFile()) throw new ConnectError('invalid_argument', `${sandboxPath} is not a regular file: only regular files can be read`);
        if (reader && !permits(stats, reader, ACCESS.read)) throw Object.assign(new Error(), { code: 'EACCES' });
        await sendFile(request, response, handle, stats.size);
      } finally {
        await handle.close();
      }
    });
  } catch (error) {
    sendError(response, failureOf(error, sandboxPath));
  }
};

async function sendFile(request: IncomingMessage, response: ServerResponse, handle: FileHandle, size: number): Promise<void> {
  const headers = { 'content-type': 'application/octet-stream', vary: 'Accept-Encoding' };
  if (size === 0) {
    const content = await readUnsized(handle);
    response.writeHead(200, { ...headers, 'content-length': content.length });
    response.end(content);
    return;
  }
  const source = handle.createReadStream({ autoClose: false, start: 0, end: size - 1 });
  if (prefersGzip(request.headers['accept-encoding'])) {
    response.writeHead(200, { ...headers, 'content-encoding': 'gzip' });
    await pipeline(source, createGzip(), response);
  } else {
    response.writeHead(200, { ...headers, 'content-length': size });
    await pipeline(source, response);
  }
}

async function readUnsized(handle: FileHandle): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < MAX_UNSIZED_FILE_BYTES) {
    const chunk = Buffer.alloc(Math.min(64 * 1024, MAX_UNSIZED_FILE_BYTES - total));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
  }
  return Buffer.concat(chunks);
}

/** Whether `Accept-Encoding` makes gzip the best choice, as envd decides it (quality first, identity implied). */
export function prefersGzip(header: string | undefined): boolean {
  if (!header) return false;
  const offers = header.split(',').map((offer, position) => {
    const [coding = '', ...parameters] = offer.split(';').map((part) => part.trim());
    const qualityParameter = parameters.find((parameter) => parameter.toLowerCase().startsWith('q='));
    const quality = qualityParameter === undefined ? 1 : Number(qualityParameter.slice(2));
    return { coding: coding.toLowerCase(), quality: Number.isFinite(quality) ? quality : 1, position };
  });
  offers.sort((left, right) => right.quality - left.quality || left.position - right.position);
  const best = offers.find((offer) => offer.quality > 0 && (offer.coding === 'gzip' || offer.coding === 'identity' || offer.coding === '*'));
  const identityRejected = offers.some((offer) => offer.coding === 'identity' && offer.quality === 0);
  return best?.coding === 'gzip' || (best?.coding === '*' && identityRejected);
}

/** `POST /files?path=&username=`: writes the body's files, creating parent directories, owned by the user. */
export const handleFilesUpload: EnvdHandler = async ({ sandbox, user, request, response, query }) => {
  let body: RequestBody | undefined;
  let sandboxPath = query.get('path') ?? '';
  const track = (location: SandboxLocation): SandboxLocation => {
    sandboxPath = location.sandboxPath;
    return location;
  };
  try {
    const metadata = metadataFromHeaders(request);
    body = decodeBody(request);
    const contentType = parseHeaderParameters(request.headers['content-type'] ?? '');
    const queryPath = query.get('path') || undefined;
    let written: WriteInfo[];
    if (contentType.value === 'application/octet-stream') {
      if (queryPath === undefined) throw new ConnectError('invalid_argument', 'an application/octet-stream upload needs the path query parameter: add ?path=<file path in the sandbox>');
      written = [await writeFile(sandbox, user, track(locate(sandbox, queryPath, user, true)), body.chunks, metadata)];
    } else if (contentType.value.startsWith('multipart/')) {
      const boundary = contentType.parameters.get('boundary');
      if (!boundary) throw new ConnectError('invalid_argument', 'the multipart Content-Type has no boundary: send multipart/form-data with its boundary parameter');
      written = [];
      const reader = new MultipartReader(body.chunks[Symbol.asyncIterator](), boundary);
      for (let headers = await reader.nextPart(); headers; headers = await reader.nextPart()) {
        const disposition = parseHeaderParameters(headers.get('content-disposition') ?? '');
        if (disposition.parameters.get('name') !== 'file') continue;
        const target = queryPath ?? filenameOf(disposition.parameters);
        if (!target) throw new ConnectError('invalid_argument', 'a file part has no filename: give each file part its path in the sandbox as its filename, or add ?path=');
        const location = track(locate(sandbox, target, user, true));
        if (written.some((info) => info.path === location.sandboxPath)) {
          throw new ConnectError('invalid_argument', `several files in one upload go to ${location.sandboxPath}: write each path once (the files before it were written)`);
        }
        written.push(await writeFile(sandbox, user, location, reader.body(), metadata));
      }
    } else {
      throw new ConnectError('invalid_argument', `unsupported Content-Type ${contentType.value || '(none)'}: send multipart/form-data or application/octet-stream`);
    }
    await body.discard();
    sendJson(response, 200, written);
  } catch (error) {
    if (body) await body.discard();
    else request.resume();
    sendError(response, failureOf(error, sandboxPath));
  }
};

/**
 * Writes `chunks` to the file at `location`, replacing what it held, and makes `metadata` its whole
 * metadata (none removes what it had, as envd does); its missing folders are made (see envd/entry.ts
 * for what `user` may write).
 */
async function writeFile(sandbox: SandboxFilesystem, user: SandboxUser, location: SandboxLocation, chunks: AsyncIterable<Buffer>, metadata: FileMetadata): Promise<WriteInfo> {
  requireWritable(location);
  if (location.parts.length === 0) throw Object.assign(new Error(), { code: 'EISDIR' });
  const owner = sandbox.idsOf(user);
  const writer = writerOf(sandbox, user, location);
  await atEntry(location, { create: owner, access: writer }, async (path) => {
    // Checked before the file is opened: opening a file of a lower layer for writing copies it up.
    const existing = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!existing) await checkChange(writer, path, 'create');
    else if (writer && existing.isFile() && !permits(existing, writer, ACCESS.write)) throw Object.assign(new Error(), { code: 'EACCES' });
    let handle: FileHandle;
    let created = true;
    try {
      handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      handle = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      created = false;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new ConnectError('invalid_argument', `${location.sandboxPath} is not a regular file: write to another path`);
      // Again on what was opened: the file may have been replaced since the check.
      if (!created && writer && !permits(stats, writer, ACCESS.write)) throw Object.assign(new Error(), { code: 'EACCES' });
      if (!created) await handle.truncate(0);
      if (stats.uid !== owner.uid || stats.gid !== owner.gid) await handle.chown(owner.uid, owner.gid);
      // The file is on the sandbox's own disk (a copy in its root's upper layer, outside /home/user and
      // /tmp), which is full for this server (root) as for the sandbox.
      try {
        for await (const chunk of chunks) {
          for (let offset = 0; offset < chunk.length; ) {
            const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
            if (bytesWritten === 0) throw Object.assign(new Error(), { code: 'ENOSPC' });
            offset += bytesWritten;
          }
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        // What was written of it would only keep the disk full.
        await handle.truncate(0);
        throw new ConnectError('resource_exhausted', `${location.sandboxPath} does not fit: the sandbox's disk (everything it writes, its template's diskMB) is full; remove files or write less`);
      }
      await replaceMetadata(pathOf(handle), metadata, location.sandboxPath);
    } finally {
      await handle.close();
    }
  });
  return { name: nameOf(location), type: 'file', path: location.sandboxPath, ...(Object.keys(metadata).length === 0 ? {} : { metadata }) };
}

/** A request body, decoded, that can be dropped early without breaking the connection. */
interface RequestBody {
  readonly chunks: AsyncIterable<Buffer>;
  /** Stops reading and lets the rest of the body flow to nowhere, so the response still reaches the client. */
  discard(): Promise<void>;
}

function decodeBody(request: IncomingMessage): RequestBody {
  const encoding = (request.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') {
    // destroyOnReturn false: leaving the loop early must not reset the connection before the answer is sent.
    const iterator = request.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
    return {
      chunks: { [Symbol.asyncIterator]: () => iterator },
      discard: async () => {
        await iterator.return?.();
        request.resume();
      },
    };
  }
  if (encoding !== 'gzip') throw new ConnectError('invalid_argument', `unsupported Content-Encoding ${encoding}: send the body gzip-encoded or not encoded`);
  const gunzip = createGunzip();
  // Bad gzip can fail before the reader starts iterating: the iterator rethrows the stored error then.
  gunzip.on('error', () => undefined);
  request.on('error', (error) => gunzip.destroy(error));
  request.on('close', () => {
    if (!request.complete) gunzip.destroy(new Error('the client closed the connection before sending the whole body'));
  });
  request.pipe(gunzip);
  return {
    chunks: gunzip,
    discard: () => {
      request.unpipe(gunzip);
      gunzip.destroy();
      request.resume();
      return Promise.resolve();
    },
  };
}

/** A header value and its `;`-separated parameters (names lower-cased), e.g. Content-Disposition. */
interface HeaderParameters {
  readonly value: string;
  readonly parameters: ReadonlyMap<string, string>;
}

/** Parses `value; name=token; name="quoted"` (quoted values end at the next quote, as browsers and undici write them). */
export function parseHeaderParameters(header: string): HeaderParameters {
  const parameters = new Map<string, string>();
  let position = header.indexOf(';');
  const value = (position === -1 ? header : header.slice(0, position)).trim().toLowerCase();
  while (position !== -1 && position < header.length) {
    position++;
    const equals = header.indexOf('=', position);
    const semicolon = header.indexOf(';', position);
    if (equals === -1 || (semicolon !== -1 && semicolon < equals)) {
      position = semicolon;
      continue;
    }
    const name = header.slice(position, equals).trim().toLowerCase();
    let start = equals + 1;
    while (header[start] === ' ' || header[start] === '\t') start++;
    if (header[start] === '"') {
      const close = header.indexOf('"', start + 1);
      const end = close === -1 ? header.length : close;
      parameters.set(name, header.slice(start + 1, end));
      position = header.indexOf(';', end);
    } else {
      const end = header.indexOf(';', start);
      parameters.set(name, header.slice(start, end === -1 ? header.length : end).trim());
      position = end;
    }
  }
  return { value, parameters };
}

/**
 * The path a file part carries as its filename: the whole filename, directories included (envd does not
 * cut it to a base name). `filename*` (RFC 5987, UTF-8) wins over `filename`, whose `%22`, `%0D` and `%0A`
 * are the quote, CR and LF that FormData escapes in it.
 */
export function filenameOf(parameters: ReadonlyMap<string, string>): string | undefined {
  const extended = parameters.get('filename*');
  if (extended !== undefined) {
    const match = /^utf-8'[^']*'(.*)$/i.exec(extended);
    if (match) {
      try {
        return decodeURIComponent(match[1]!);
      } catch {
        // Malformed percent-encoding: fall back to the plain filename.
      }
    }
  }
  return parameters.get('filename')?.replace(/%0A/gi, '\n').replace(/%0D/gi, '\r').replace(/%22/g, '"');
}

/**
 * A streaming multipart reader (RFC 2046), one part at a time, so uploads never sit in memory whole.
 *
 * Written here because no streaming multipart parser is installed: busboy and @fastify/busboy are
 * absent, and undici's `Request.formData()` buffers the entire body, every file included, in memory.
 */
export class MultipartReader {
  private readonly delimiter: Buffer;
  // A CRLF in front lets the first boundary, which starts the body, match like every later one.
  private buffered: Buffer = Buffer.from('\r\n');
  private sourceEnded = false;
  /** Bytes before the next delimiter still belong to a preamble or an unread part body. */
  private beforeDelimiter = true;
  private finished = false;

  constructor(
    private readonly source: AsyncIterator<Buffer>,
    boundary: string,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  /**
   * Moves to the next part, skipping what is left of the current one, and returns its headers (names
   * lower-cased), or undefined after the last part.
   * @throws ConnectError invalid_argument on a malformed body.
   */
  async nextPart(): Promise<Map<string, string> | undefined> {
    if (this.finished) return undefined;
    if (this.beforeDelimiter) {
      for await (const skipped of this.untilDelimiter()) void skipped;
    }
    await this.want(2);
    if (this.buffered.subarray(0, 2).toString('latin1') === '--') {
      this.finished = true;
      return undefined;
    }
    let padding = 0;
    for (;;) {
      while (padding < this.buffered.length && (this.buffered[padding] === 0x20 || this.buffered[padding] === 0x09)) padding++;
      if (padding < this.buffered.length || !(await this.fill())) break;
    }
    this.buffered = this.buffered.subarray(padding);
    // The boundary line's CRLF is kept so that an empty header block is found as CRLF CRLF at 0.
    let end = this.buffered.indexOf('\r\n\r\n');
    while (end === -1) {
      if (this.buffered.length > MAX_PART_HEADER_BYTES) throw malformed(`a part's headers are longer than ${MAX_PART_HEADER_BYTES} bytes`);
      if (!(await this.fill())) throw malformed('the body ended inside a part header');
      end = this.buffered.indexOf('\r\n\r\n');
    }
    if (!this.buffered.subarray(0, 2).equals(Buffer.from('\r\n'))) throw malformed('a boundary line has extra characters');
    const headers = new Map<string, string>();
    for (const line of this.buffered.subarray(2, end).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    this.buffered = this.buffered.subarray(end + 4);
    this.beforeDelimiter = true;
    return headers;
  }

  /** The current part's body. */
  async *body(): AsyncGenerator<Buffer> {
    if (this.beforeDelimiter && !this.finished) yield* this.untilDelimiter();
  }

  private async *untilDelimiter(): AsyncGenerator<Buffer> {
    const keep = this.delimiter.length - 1;
    for (;;) {
      const index = this.buffered.indexOf(this.delimiter);
      if (index !== -1) {
        const data = this.buffered.subarray(0, index);
        this.buffered = this.buffered.subarray(index + this.delimiter.length);
        this.beforeDelimiter = false;
        if (data.length > 0) yield data;
        return;
      }
      if (this.buffered.length > keep) {
        const data = this.buffered.subarray(0, this.buffered.length - keep);
        this.buffered = this.buffered.subarray(this.buffered.length - keep);
        yield data;
      }
      if (!(await this.fill())) throw malformed('the body ended before its closing boundary');
    }
  }

  private async want(bytes: number): Promise<void> {
    while (this.buffered.length < bytes) {
      if (!(await this.fill())) throw malformed('the body ended right after a boundary');
    }
  }

  private async fill(): Promise<boolean> {
    if (this.sourceEnded) return false;
    const next = await this.source.next();
    if (next.done) {
      this.sourceEnded = true;
      return false;
    }
    const chunk = next.value;
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    return true;
  }
}

function malformed(problem: string): ConnectError {
  return new ConnectError('invalid_argument', `malformed multipart body: ${problem}; send a complete multipart/form-data body`);
}
