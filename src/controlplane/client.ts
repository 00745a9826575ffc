import type { z } from 'zod';
import { InvalidInputError, TradeswarmError, errorChain } from '../core/index.js';
import type { agentLogLineSchema, deploymentStatusSchema, deploymentViewSchema, errorBodySchema, eventRecordSchema, fillRecordSchema, healthSchema, orderRecordSchema } from './schemas.js';

/** Where `tradeswarm serve` listens by default, and where clients go when given no URL. */
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:7070';

/** A deployment as `GET /v1/deployments` answers it. */
export type DeploymentViewAnswer = z.infer<typeof deploymentViewSchema>;
/** A deployment as `GET /v1/deployments/:ref` answers it. */
export type DeploymentStatusAnswer = z.infer<typeof deploymentStatusSchema>;
/** An order as `GET /v1/deployments/:ref/orders` answers it. */
export type OrderAnswer = z.infer<typeof orderRecordSchema>;
/** A fill as `GET /v1/deployments/:ref/fills` answers it. */
export type FillAnswer = z.infer<typeof fillRecordSchema>;
/** An event as `GET /v1/deployments/:ref/events` answers it. */
export type EventAnswer = z.infer<typeof eventRecordSchema>;
/** A line an agent printed, as `GET /v1/deployments/:ref/logs` answers it. */
export type AgentLogAnswer = z.infer<typeof agentLogLineSchema>;
/** What `GET /healthz` answers: whether the server leads, when it shares its store with others. */
export type HealthAnswer = z.infer<typeof healthSchema>;

/** An answer of `tradeswarm serve` that is not a success: its status and its error body. */
export class ServerError extends TradeswarmError {
  override readonly name = 'ServerError';
  /** Every field at fault, when the server listed them (a spec's mistakes); empty otherwise. */
  readonly issues: ReadonlyArray<{ readonly path: string; readonly got: unknown; readonly allowed: string }>;

  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    const error = (body as Partial<z.infer<typeof errorBodySchema>> | null)?.error;
    super(error?.message ?? `the server answered ${status}`, { retryable: error?.retryable ?? status >= 500 });
    this.issues = error?.issues ?? [];
  }
}

/** Options of {@link ControlPlaneClient}. */
export interface ControlPlaneClientOptions {
  /** The server. @default TRADESWARM_URL, else {@link DEFAULT_SERVER_URL} */
  readonly url?: string;
  /** Sent as `Authorization: Bearer <apiKey>`. @default TRADESWARM_API_KEY, else none */
  readonly apiKey?: string;
}

/** What {@link ControlPlaneClient.deploy} sends: the body of `POST /v1/deployments`. */
export interface DeployInput {
  /** The spec, as YAML text. */
  readonly spec: string;
  /** Where the spec's CSV paths are relative to, on the server's machine. */
  readonly baseDir: string;
  /** @default the spec's name */
  readonly name?: string;
  /** dev, staging or prod (the server names the field when it is none of them). @default 'dev' */
  readonly env?: string;
}

/**
 * A typed client of `tradeswarm serve`'s /v1 API, used by the CLI's client commands and the MCP
 * tools. Answers are typed by the API's zod schemas (`schemas.ts`).
 * Every method throws a retryable TradeswarmError saying how to start a server when none answers,
 * and a {@link ServerError} with the server's message (every field at fault, for a bad spec) otherwise.
 */
export class ControlPlaneClient {
  /** The server this client calls. */
  readonly url: string;
  readonly #apiKey: string | undefined;

  /** @throws InvalidInputError naming `url` when it is not an http:// or https:// URL. */
  constructor(options: ControlPlaneClientOptions = {}) {
    this.url = options.url ?? process.env.TRADESWARM_URL ?? DEFAULT_SERVER_URL;
    if (!URL.canParse(this.url) || !['http:', 'https:'].includes(new URL(this.url).protocol)) {
      throw new InvalidInputError('url', `must be the http:// or https:// address of a tradeswarm serve, such as ${DEFAULT_SERVER_URL}, got ${JSON.stringify(this.url)}; fix --url or TRADESWARM_URL`);
    }
    this.#apiKey = options.apiKey ?? process.env.TRADESWARM_API_KEY;
  }

  /** `GET /healthz`: the server answers, and whether it leads or follows (several servers on one PostgreSQL). */
  health(): Promise<HealthAnswer> {
    return this.#call('GET', '/healthz');
  }

  /** `POST /v1/deployments`: creates a deployment and starts it. */
  deploy(input: DeployInput): Promise<DeploymentViewAnswer> {
    return this.#call('POST', '/v1/deployments', input);
  }

  /** `GET /v1/deployments`: every deployment, newest first. */
  list(): Promise<DeploymentViewAnswer[]> {
    return this.#call('GET', '/v1/deployments');
  }

  /** `GET /v1/deployments/:ref`: one deployment by name or id, with agents, positions, latest events and report. */
  status(ref: string): Promise<DeploymentStatusAnswer> {
    return this.#call('GET', `/v1/deployments/${encodeURIComponent(ref)}`);
  }

  /** `GET /v1/deployments/:ref/orders`: its orders as stored, from a step on. */
  orders(ref: string, options: { readonly fromStep?: number; readonly limit?: number } = {}): Promise<OrderAnswer[]> {
    return this.#call('GET', `/v1/deployments/${encodeURIComponent(ref)}/orders${query(options)}`);
  }

  /** `GET /v1/deployments/:ref/fills`: its fills as stored. */
  fills(ref: string): Promise<FillAnswer[]> {
    return this.#call('GET', `/v1/deployments/${encodeURIComponent(ref)}/fills`);
  }

  /** `GET /v1/deployments/:ref/events`: its events after an id. */
  events(ref: string, options: { readonly after?: number; readonly limit?: number } = {}): Promise<EventAnswer[]> {
    return this.#call('GET', `/v1/deployments/${encodeURIComponent(ref)}/events${query(options)}`);
  }

  /** `GET /v1/deployments/:ref/logs`: what its agents printed, after a seq, of one agent when given. */
  agentLogs(ref: string, options: { readonly after?: number; readonly agent?: string; readonly limit?: number } = {}): Promise<AgentLogAnswer[]> {
    return this.#call('GET', `/v1/deployments/${encodeURIComponent(ref)}/logs${query(options)}`);
  }

  /** `POST /v1/deployments/:ref/agents/:agent/restart`: restarts a lost agent (manual recovery). */
  restartAgent(ref: string, agentId: string): Promise<DeploymentViewAnswer> {
    return this.#call('POST', `/v1/deployments/${encodeURIComponent(ref)}/agents/${encodeURIComponent(agentId)}/restart`);
  }

  /** `POST /v1/deployments/:ref/scale`: the agents of `role` (an agent id, a role, or `all`) run alone (1) or with a hot standby (2). */
  scale(ref: string, role: string, replicas: number): Promise<DeploymentViewAnswer> {
    return this.#call('POST', `/v1/deployments/${encodeURIComponent(ref)}/scale`, { role, replicas });
  }

  /** `POST /v1/deployments/:ref/stop`: stops it for good; resolves once it stopped. */
  stop(ref: string, options: { readonly liquidate?: boolean } = {}): Promise<DeploymentViewAnswer> {
    return this.#call('POST', `/v1/deployments/${encodeURIComponent(ref)}/stop${options.liquidate === true ? '?liquidate=true' : ''}`);
  }

  async #call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.url), {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new TradeswarmError(
        `no tradeswarm server answers at ${this.url} (${errorChain(error)}); start one with \`tradeswarm serve\` (it listens on ${DEFAULT_SERVER_URL}), or point --url / TRADESWARM_URL at yours`,
        { cause: error, retryable: true },
      );
    }
    const answer: unknown = await response.json().catch(() => null);
    if (!response.ok) throw new ServerError(response.status, answer);
    return answer as T;
  }
}

function query(options: Readonly<Record<string, number | string | undefined>>): string {
  const entries = Object.entries(options).filter((entry): entry is [string, number | string] => entry[1] !== undefined);
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([key, value]): [string, string] => [key, String(value)])).toString()}`;
}
