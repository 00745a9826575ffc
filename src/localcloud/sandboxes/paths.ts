import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

/** Where a sandbox's filesystem is reached from the host. */
export interface WritableRoots {
  /** Host directory seen as /home/user. */
  readonly home: string;
  /** Host directory seen as /tmp. */
  readonly tmp: string;
  /** Host path of the sandbox's whole root view, e.g. /proc/<init pid>/root. */
  readonly rootView: string;
}

/** A path resolved inside a sandbox. */
export interface ResolvedPath {
  /** Canonical absolute path as the sandbox sees it (symlinks resolved). */
  readonly sandboxPath: string;
  /** The same file on the host. */
  readonly hostPath: string;
  /**
   * Under /home/user or /tmp, the sandbox's own folders (its disk's), where the files API acts for
   * `user` as for root; elsewhere `user`'s permissions apply (see envd/entry.ts).
   */
  readonly homeOrTmp: boolean;
}

const MAX_SYMLINKS = 40;

/** Maps an absolute, normalised sandbox path to its host path. */
export function toHostPath(roots: WritableRoots, sandboxPath: string): { hostPath: string; homeOrTmp: boolean } {
  for (const [prefix, hostRoot] of [['/home/user', roots.home], ['/tmp', roots.tmp]] as const) {
    if (sandboxPath === prefix || sandboxPath.startsWith(`${prefix}/`)) return { hostPath: hostRoot + sandboxPath.slice(prefix.length), homeOrTmp: true };
  }
  return { hostPath: roots.rootView + sandboxPath, homeOrTmp: false };
}

/**
 * Resolves a path the way the sandbox would see it: relative paths start at `home`, and every
 * symlink is followed inside the sandbox's view (an absolute link target means the sandbox's /, never
 * the host's). This is what keeps a link like `/home/user/x -> /etc/passwd` from reaching the host.
 * Components that do not exist yet are kept as written (for creating files and directories).
 * @param followLast whether a symlink as the last component is followed (false for remove/rename).
 */
export function resolveSandboxPath(roots: WritableRoots, path: string, home: string, followLast = true): ResolvedPath {
  let pending = (posix.isAbsolute(path) ? path : posix.join(home, path)).split('/').filter(Boolean);
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = `/${[...resolved, part].join('/')}`;
    const isLast = pending.length === 0;
    let target: string | undefined;
    try {
      const host = toHostPath(roots, candidate).hostPath;
      if (lstatSync(host).isSymbolicLink() && (followLast || !isLast)) target = readlinkSync(host);
    } catch {
      // Missing: keep the rest as written.
    }
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw Object.assign(new Error(`too many levels of symbolic links in ${path}`), { code: 'ELOOP' });
    if (target.startsWith('/')) resolved = [];
    pending = [...target.split('/').filter(Boolean), ...pending];
  }
  const sandboxPath = `/${resolved.join('/')}`;
  return { sandboxPath, ...toHostPath(roots, sandboxPath) };
}
