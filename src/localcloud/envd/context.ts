import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LocalSandbox, SandboxUser } from '../sandboxes/index.js';

/** One request to a sandbox's envd, already authenticated (access token) and routed to its sandbox. */
export interface EnvdRequestContext {
  readonly sandbox: LocalSandbox;
  /** The Linux user the request acts as (from `Authorization: Basic base64("<user>:")`, default `user`). */
  readonly user: SandboxUser;
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** Parsed query string of the request URL. */
  readonly query: URLSearchParams;
}

/** Handles one RPC method or HTTP route of envd. It must answer the response itself. */
export type EnvdHandler = (context: EnvdRequestContext) => Promise<void>;

/** An RPC service: method name (e.g. `Stat`) to handler. */
export type EnvdService = Readonly<Record<string, EnvdHandler>>;
