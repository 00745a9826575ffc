import type { ChildProcess } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { randomId } from '../../core/index.js';
import type { SandboxCapability, SandboxProcess } from '../isolation/index.js';
import type { LocalSandbox } from '../sandboxes/index.js';
import { KERNELS_SANDBOX_DIR, Kernel, type KernelLanguage, type KernelSpawnOptions } from './kernel.js';
import { readBody, sendJson } from '../http.js';

/** Routes one request to a sandbox's code interpreter. */
export type InterpreterRouter = (sandbox: LocalSandbox, request: IncomingMessage, response: ServerResponse, url: URL) => Promise<void>;

/**
 * The host-side child of a sandbox process is its `nsenter` leader. A kernel is driven through that
 * child, so its `kill` is pointed where each signal belongs: SIGINT (interrupt) at the kernel inside the
 * sandbox, which must survive it; anything else at the whole process group, so nothing is left running.
 */
function asKernelProcess(started: SandboxProcess): ChildProcess {
  const { child } = started;
  child.kill = (signal: NodeJS.Signals | number = 'SIGTERM'): boolean => {
    if (signal === 'SIGINT') return started.signalInside('SIGINT');
    try {
      process.kill(-child.pid!, signal);
      return true;
    } catch {
      return false;
    }
  };
  return child;
}

/**
 * Kernels start as root keeping only what dropping to `user` takes (Python's zygote also signals its
 * workers). Neither runs a line of user code as root: the Python zygote forks a worker that drops to
 * `user` first (see python_kernel.py), the JavaScript kernel drops on its first execution. Until then
 * user code cannot reach them, nor does the service's scrub (which kills every process of `user`)
 * kill them, so a reset forks a worker or finds the JavaScript kernel still fresh instead of
 * starting an interpreter.
 */
const KERNEL_CAPABILITIES: Readonly<Record<KernelLanguage, readonly SandboxCapability[]>> = {
  python: ['setuid', 'setgid', 'kill'],
  javascript: ['setuid', 'setgid'],
};

function spawnKernel(sandbox: LocalSandbox, language: KernelLanguage, argv: string[], options: KernelSpawnOptions): ChildProcess {
  const { uid, gid } = sandbox.idsOf('user');
  return asKernelProcess(
    sandbox.spawn({
      argv,
      user: 'root',
      capabilities: KERNEL_CAPABILITIES[language],
      // The environment `user` gets; the kernel removes the two settings meant for itself.
      env: { ...sandbox.baseEnv('user'), ...options.env, TRADESWARM_KERNEL_USER: `${uid}:${gid}`, TRADESWARM_KERNEL_CWD: options.cwd },
      // Root cannot enter every directory of `user` (it has no CAP_DAC_OVERRIDE); the kernel enters `cwd` as `user`.
      cwd: '/',
      extraFds: options.extraFds,
    }),
  );
}

/** Languages callers may name, and the kernel that runs each. */
const LANGUAGES: Readonly<Record<string, KernelLanguage>> = { python: 'python', py: 'python', javascript: 'javascript', js: 'javascript' };
const UNSUPPORTED = ['typescript', 'ts', 'r', 'java', 'bash', 'deno'];

const executeSchema = z.object({
  code: z.string(),
  context_id: z.string().optional().nullable(),
  language: z.string().optional().nullable(),
  env_vars: z.record(z.string(), z.string()).optional().nullable(),
});
const contextSchema = z.object({ language: z.string().optional().nullable(), cwd: z.string().optional().nullable() });

interface CodeContext {
  readonly id: string;
  readonly language: KernelLanguage;
  readonly cwd: string;
  kernel: Promise<Kernel>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function languageOf(name: string | null | undefined): KernelLanguage {
  const key = (name ?? 'python').toLowerCase();
  const language = LANGUAGES[key];
  if (language) return language;
  const hint = UNSUPPORTED.includes(key) ? ' (E2B cloud has it; the local cloud does not)' : '';
  throw new HttpError(400, `language '${name}' is not supported by the local cloud${hint}: use python or javascript`);
}


async function jsonBody<T>(request: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const text = (await readBody(request)).toString('utf8');
  let value: unknown;
  try {
    value = text ? JSON.parse(text) : {};
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HttpError(400, `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}

/** The code interpreter of every local sandbox: `/execute` and `/contexts`, one persistent kernel per context. */
export function createInterpreterRouter(): InterpreterRouter {
  const contextsBySandbox = new WeakMap<LocalSandbox, Map<string, CodeContext>>();

  const contextsOf = (sandbox: LocalSandbox): Map<string, CodeContext> => {
    let contexts = contextsBySandbox.get(sandbox);
    if (!contexts) {
      const created = new Map<string, CodeContext>();
      contextsBySandbox.set(sandbox, created);
      sandbox.onKilled(() => {
        for (const context of created.values()) void context.kernel.then((kernel) => kernel.close()).catch(() => undefined);
        created.clear();
        contextsBySandbox.delete(sandbox);
      });
      contexts = created;
    }
    return contexts;
  };

  const startKernel = (sandbox: LocalSandbox, language: KernelLanguage, cwd: string): Promise<Kernel> => {
    const kernel = Kernel.start({
      language,
      kernelsDir: KERNELS_SANDBOX_DIR,
      cwd,
      env: {},
      spawn: (argv, options) => spawnKernel(sandbox, language, argv, options),
    });
    kernel.catch(() => undefined);
    return kernel;
  };

  const restarted = (kernel: Kernel): Promise<Kernel> => {
    const pending = kernel.restart().then(() => kernel);
    pending.catch(() => undefined);
    return pending;
  };

  const createContext = (sandbox: LocalSandbox, language: KernelLanguage, cwd: string, id = randomId(16)): CodeContext => {
    const context: CodeContext = { id, language, cwd, kernel: startKernel(sandbox, language, cwd) };
    contextsOf(sandbox).set(id, context);
    return context;
  };

  /** The default context of a language has the language's name as its id. */
  const defaultContext = (sandbox: LocalSandbox, language: KernelLanguage): CodeContext =>
    contextsOf(sandbox).get(language) ?? createContext(sandbox, language, sandbox.homeOf('user'), language);

  const findContext = (sandbox: LocalSandbox, id: string): CodeContext => {
    const context = contextsOf(sandbox).get(id);
    if (!context) throw new HttpError(404, `context ${id} not found: create it with createCodeContext() first, or it was removed`);
    return context;
  };

  const readyKernel = async (sandbox: LocalSandbox, context: CodeContext): Promise<Kernel> => {
    let kernel: Kernel;
    try {
      kernel = await context.kernel;
    } catch (error) {
      // A kernel that failed to start is tried again on the next request.
      context.kernel = startKernel(sandbox, context.language, context.cwd);
      throw new HttpError(500, `the ${context.language} kernel could not start: ${(error as Error).message}`);
    }
    if (kernel.alive || kernel.starting) return kernel;
    // Dead (its code exited, or the scrub killed it): the same kernel restarts, by a fork where it can.
    context.kernel = restarted(kernel);
    return context.kernel;
  };

  const execute = async (sandbox: LocalSandbox, request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const body = await jsonBody(request, executeSchema);
    if (body.context_id && body.language) throw new HttpError(400, 'give context_id or language, not both');
    const context = body.context_id ? findContext(sandbox, body.context_id) : defaultContext(sandbox, languageOf(body.language));
    const kernel = await readyKernel(sandbox, context);
    const aborted = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) aborted.abort();
    });
    response.writeHead(200, { 'content-type': 'application/x-ndjson' });
    response.flushHeaders();
    await kernel.execute(body.code, {
      envVars: body.env_vars ?? {},
      signal: aborted.signal,
      onMessage: (message) => {
        if (!response.writableEnded) response.write(`${JSON.stringify(message)}\n`);
      },
    });
    response.end();
  };

  return async (sandbox, request, response, url) => {
    try {
      const method = request.method ?? 'GET';
      const path = url.pathname;
      if (path === '/health') {
        sendJson(response, 200, { status: 'ok' });
      } else if (method === 'POST' && path === '/execute') {
        await execute(sandbox, request, response);
      } else if (method === 'POST' && path === '/contexts') {
        const body = await jsonBody(request, contextSchema);
        const context = createContext(sandbox, languageOf(body.language), body.cwd ?? sandbox.homeOf('user'));
        await context.kernel.catch((error: Error) => {
          contextsOf(sandbox).delete(context.id);
          throw new HttpError(500, `the ${context.language} kernel could not start: ${error.message}`);
        });
        sendJson(response, 200, { id: context.id, language: context.language, cwd: context.cwd });
      } else if (method === 'GET' && path === '/contexts') {
        sendJson(response, 200, [...contextsOf(sandbox).values()].map(({ id, language, cwd }) => ({ id, language, cwd })));
      } else if (method === 'DELETE' && path.startsWith('/contexts/')) {
        const context = findContext(sandbox, decodeURIComponent(path.slice('/contexts/'.length)));
        contextsOf(sandbox).delete(context.id);
        await (await context.kernel.catch(() => undefined))?.close();
        response.writeHead(204);
        response.end();
      } else if (method === 'POST' && /^\/contexts\/[^/]+\/restart$/.test(path)) {
        const context = findContext(sandbox, decodeURIComponent(path.split('/')[2]!));
        const old = await context.kernel.catch(() => undefined);
        context.kernel = old === undefined ? startKernel(sandbox, context.language, context.cwd) : restarted(old);
        await context.kernel;
        response.writeHead(204);
        response.end();
      } else {
        sendJson(response, 404, { code: 404, message: `the code interpreter has no ${method} ${path}` });
      }
    } catch (error) {
      if (response.headersSent) {
        response.end();
        return;
      }
      const status = error instanceof HttpError ? error.status : 500;
      sendJson(response, status, { code: status, message: (error as Error).message });
    }
  };
}
