// What the benches that drive `tradeswarm serve` over its API share (controlplane.bench.ts,
// restart-builds.bench.ts): the synthetic spec they deploy and the calls they make.

/** Bars per symbol of the synthetic spec: long enough that no deployment ends during a bench. */
export const BENCH_BAR_COUNT = 20_000;

const STRATEGIES = [
  'type: sma-crossover, symbol: AAA, fastPeriod: 10, slowPeriod: 40',
  'type: momentum, symbol: BBB, lookback: 20, entryThreshold: 0.03, exitThreshold: 0',
  'type: ema-crossover, symbol: AAA, fastPeriod: 8, slowPeriod: 30',
  'type: sma-crossover, symbol: BBB, fastPeriod: 5, slowPeriod: 20',
  'type: momentum, symbol: AAA, lookback: 10, entryThreshold: 0.02, exitThreshold: 0',
];

/**
 * A lockstep mesh on synthetic bars: one agent per strategy. Every strategy is named after its
 * deployment: agents' MQTT client ids are their agent ids, which derive from the strategies, and the
 * broker serve shares among its deployments refuses a second client with the same id (see the README).
 */
export function specYaml(seed: number, agents: 2 | 5, options: { readonly barCount?: number; readonly loop?: boolean } = {}): string {
  return [
    `name: cp-bench-${seed}`,
    'data:',
    '  source: synthetic',
    `  seed: ${seed}`,
    '  symbols: [AAA, BBB]',
    `  barCount: ${options.barCount ?? BENCH_BAR_COUNT}`,
    'strategies:',
    ...STRATEGIES.slice(0, agents).map((strategy, index) => `  - { name: d${seed}-s${index}, ${strategy}, sizing: { type: fraction-of-equity, fraction: 0.3 } }`),
    'swarm:',
    '  topology: mesh',
    '  pacing: lockstep',
    ...(options.loop === true ? ['  feed: { source: data, loop: true }'] : []),
    '',
  ].join('\n');
}

/** How long a bench waits for one answer of serve's API. */
const API_TIMEOUT_MS = 120_000;

/** Calls serve's API; throws with the status and body on an error answer. */
export async function api<T>(serve: { readonly url: string }, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let text: string;
  let response: Response;
  try {
    response = await fetch(new URL(path, serve.url), {
      method,
      // A request serve never answers fails the bench, naming it, instead of holding it for ever.
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    text = await response.text();
  } catch (error) {
    throw new Error(`${method} ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** A deployment as GET /v1/deployments lists it (what the benches read of it). */
export interface View {
  readonly name: string;
  readonly state: string;
  readonly steps: number;
  readonly agents: { readonly healthy: number; readonly total: number };
}

/** A deployment's event as GET /v1/deployments/:name/events gives it. */
export interface EventRecord {
  readonly atMs: number;
  readonly step: number | null;
  readonly kind: string;
  readonly agentId: string | null;
  readonly detail: string | null;
}
