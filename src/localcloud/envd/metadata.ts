/**
 * File metadata as envd keeps it: string pairs stored as extended attributes `user.e2b.<key>` on the
 * file, so metadata set inside the sandbox (`setfattr`, `os.setxattr`) shows up through the API too.
 * Node has no extended-attribute calls, so one Python helper (envd/xattrs.py) makes them for the server.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ConnectError } from './connect.js';

export type FileMetadata = Readonly<Record<string, string>>;

type Helper = ChildProcessByStdio<Writable, Readable, null>;

const HELPER_SCRIPT = fileURLToPath(new URL('./xattrs.py', import.meta.url));
const HEADER_PREFIX = 'x-metadata-';
/** What the SDK allows in a key (an HTTP token) and a value (printable US-ASCII). */
const KEY = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE = /^[\x20-\x7e]*$/;

interface Reply {
  readonly id: number;
  readonly results?: FileMetadata[];
  readonly error?: { readonly code: string; readonly message: string };
}

/**
 * The metadata of an upload, from its `X-Metadata-<key>: <value>` headers: keys lowercased (HTTP header
 * names are case-insensitive, envd lowercases them too), the first value of a repeated header, empty
 * keys dropped. @throws ConnectError invalid_argument naming a key or value the SDK would not send.
 */
export function metadataFromHeaders(request: IncomingMessage): FileMetadata {
  const metadata: Record<string, string> = {};
  for (const [name, values] of Object.entries(request.headersDistinct)) {
    if (!name.startsWith(HEADER_PREFIX) || values === undefined) continue;
    const key = name.slice(HEADER_PREFIX.length);
    const value = values[0] ?? '';
    if (key === '') continue;
    if (!KEY.test(key)) throw new ConnectError('invalid_argument', `metadata key ${JSON.stringify(key)} (header ${name}) is not an HTTP token: use letters, digits and !#$%&'*+-.^_\`|~`);
    if (!VALUE.test(value)) throw new ConnectError('invalid_argument', `metadata value of ${JSON.stringify(key)} (header ${name}) is not printable US-ASCII: encode it, e.g. as base64`);
    metadata[key] = value;
  }
  return metadata;
}

/** `/proc/self/fd/N/...` names this process's descriptors; the helper needs them by this process's pid. */
function forHelper(path: string): string {
  return path.startsWith('/proc/self/') ? `/proc/${process.pid}/${path.slice('/proc/self/'.length)}` : path;
}

/** The server's one helper process, started on first use and again if it ever exits. */
class XattrHelper {
  private child: Helper | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();

  async request(message: Record<string, unknown>): Promise<Reply> {
    const child = this.running();
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.hold(child, true);
    child.stdin.write(`${JSON.stringify({ ...message, id })}\n`);
    const answered = await reply;
    if (answered.error) throw Object.assign(new Error(answered.error.message), { code: answered.error.code });
    return answered;
  }

  private running(): Helper {
    if (this.child) return this.child;
    const child = spawn('/usr/bin/python3', ['-I', '-S', HELPER_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const reply = JSON.parse(line) as Reply;
      this.pending.get(reply.id)?.resolve(reply);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.hold(child, false);
    });
    const fail = (error: Error): void => {
      if (this.child === child) this.child = undefined;
      for (const { reject } of this.pending.values()) reject(new Error(`the file metadata helper (/usr/bin/python3 ${HELPER_SCRIPT}) stopped: ${error.message}`));
      this.pending.clear();
    };
    child.on('error', fail);
    child.on('exit', (code, signal) => fail(new Error(`exit ${code ?? signal}`)));
    return child;
  }

  /** Keeps the server's process alive for the helper only while a request waits for it. */
  private hold(child: Helper, held: boolean): void {
    for (const handle of [child, child.stdin as unknown as Socket, child.stdout as unknown as Socket]) {
      if (held) handle.ref();
      else handle.unref();
    }
  }
}

const helper = new XattrHelper();

/**
 * The metadata of each entry, `undefined` for one without any, in one request to the helper.
 * @param paths no-follow paths from `atEntry`, or with `open` the paths of open files (`/proc/self/fd/N`).
 */
export async function readMetadataOf(paths: readonly string[], open = false): Promise<(FileMetadata | undefined)[]> {
  if (paths.length === 0) return [];
  const { results = [] } = await helper.request({ op: 'read', paths: paths.map(forHelper), follow: open });
  return results.map((metadata) => (Object.keys(metadata).length === 0 ? undefined : metadata));
}

/** The metadata of one entry (see {@link readMetadataOf}). */
export async function readMetadata(path: string, open = false): Promise<FileMetadata | undefined> {
  const [metadata] = await readMetadataOf([path], open);
  return metadata;
}

/**
 * Makes `metadata` the file's whole metadata (an empty one removes what it had), as envd does on every
 * upload. @param path the path of an open file (`/proc/self/fd/N`).
 * @throws ConnectError failed_precondition when the file's filesystem cannot hold extended attributes,
 * invalid_argument when the metadata is too large for them.
 */
export async function replaceMetadata(path: string, metadata: FileMetadata, sandboxPath = 'the file'): Promise<void> {
  try {
    await helper.request({ op: 'replace', path: forHelper(path), metadata });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
      if (Object.keys(metadata).length === 0) return;
      throw new ConnectError('failed_precondition', `${sandboxPath} is on a filesystem without extended attributes, where metadata cannot be kept: write it under /home/user or /tmp`);
    }
    if (code === 'E2BIG' || code === 'ENOSPC' || code === 'ERANGE') {
      throw new ConnectError('invalid_argument', `the metadata of ${sandboxPath} does not fit in its extended attributes (ext4 keeps about 4 KiB of them per file, keys included): send less`);
    }
    throw error;
  }
}
