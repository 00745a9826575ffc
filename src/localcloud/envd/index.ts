import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LocalSandbox, SandboxUser } from '../sandboxes/index.js';
import type { EnvdHandler, EnvdRequestContext, EnvdService } from './context.js';
import { createFilesystemService } from './filesystem.js';
import { handleFilesDownload, handleFilesUpload } from './files.js';
import { createProcessService } from './process.js';
import { sendJson } from '../http.js';

export type { EnvdRequestContext, EnvdHandler, EnvdService } from './context.js';
export { isSignableFileRequest, refuseSignature, signedWith } from './signing.js';

/** Routes one request to a sandbox's envd. */
export type EnvdRouter = (sandbox: LocalSandbox, request: IncomingMessage, response: ServerResponse, url: URL) => Promise<void>;


/** Reads the Linux user from `Authorization: Basic base64("<user>:")`; no header means `user`. */
function userFromRequest(request: IncomingMessage, query: URLSearchParams): SandboxUser | undefined {
  const header = request.headers.authorization;
  let name = query.get('username') ?? undefined;
  if (header?.startsWith('Basic ')) name = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':')[0];
  if (name === undefined || name === '' || name === 'user') return 'user';
  return name === 'root' ? 'root' : undefined;
}

/** The envd of every local sandbox: health, files, and the process and filesystem RPC services. */
export function createEnvdRouter(): EnvdRouter {
  const services: Readonly<Record<string, EnvdService>> = {
    'process.Process': createProcessService(),
    'filesystem.Filesystem': createFilesystemService(),
  };
  const routes: Readonly<Record<string, EnvdHandler>> = {
    'GET /files': handleFilesDownload,
    'POST /files': handleFilesUpload,
  };
  return async (sandbox, request, response, url) => {
    if (url.pathname === '/health') {
      response.writeHead(204);
      response.end();
      return;
    }
    const user = userFromRequest(request, url.searchParams);
    if (!user) {
      sendJson(response, 401, { code: 401, message: 'unknown sandbox user: the local cloud has the users "user" and "root"' });
      return;
    }
    const context: EnvdRequestContext = { sandbox, user, request, response, query: url.searchParams };
    const route = routes[`${request.method ?? 'GET'} ${url.pathname}`];
    if (route) return route(context);
    const [, serviceName, method] = /^\/([\w.]+)\/(\w+)$/.exec(url.pathname) ?? [];
    const handler = serviceName && method ? services[serviceName]?.[method] : undefined;
    if (!handler || request.method !== 'POST') {
      sendJson(response, 404, { code: 'unimplemented', message: `envd has no ${request.method ?? ''} ${url.pathname}` });
      return;
    }
    return handler(context);
  };
}
