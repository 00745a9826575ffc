import { InvalidInputError, Rng } from '../core/index.js';

/**
 * The faults the chaos suite injects, each from outside, the way an operator or a failure would:
 * - `agent-kill`: SIGKILL of one agent's process inside its sandbox (through the SDK);
 * - `sandbox-kill`: one agent's sandbox killed through the SDK;
 * - `pause`: one agent's sandbox paused through the SDK for longer than the agent timeout, then
 *   resumed (a slow agent, not a dead one);
 * - `broker-restart`: the MQTT broker's process killed and started again on the same port;
 * - `serve-kill`: the control plane's process SIGKILLed and started again on the same store;
 * - `leader-kill`: of two serves on one PostgreSQL, the one that leads SIGKILLed: the other takes the
 *   deployment over, and a new follower is started.
 */
export const FAULT_KINDS = ['agent-kill', 'sandbox-kill', 'pause', 'broker-restart', 'serve-kill', 'leader-kill'] as const;

/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The kinds that hit one agent (the others hit the whole deployment). */
export const AGENT_FAULTS: readonly FaultKind[] = ['agent-kill', 'sandbox-kill', 'pause'];

/** A range of milliseconds, both ends included. */
export interface MsRange {
  readonly min: number;
  readonly max: number;
}

/** Options of {@link planSchedule}. */
export interface ScheduleOptions {
  /** Seeds the schedule: the same options always give the same faults. */
  readonly seed: number;
  /** The run's time steps; faults land on steps inside it. */
  readonly steps: number;
  /** The kinds to inject, each `perKind` times. */
  readonly kinds: readonly FaultKind[];
  /** @default 3 */
  readonly perKind?: number;
  /** The agents that faults of one agent pick from (any of them, the critical ones too). */
  readonly agents: readonly string[];
  /** How long a `pause` lasts. */
  readonly pauseMs: MsRange;
  /** How long the broker stays down in a `broker-restart`. */
  readonly brokerDownMs: MsRange;
  /** The share of steps at the start and at the end left without faults. @default 0.05 */
  readonly marginShare?: number;
}

/** A fault of the schedule. */
export interface ScheduledFault {
  /** Its place in the schedule, from 0. */
  readonly seq: number;
  readonly kind: FaultKind;
  /** It is injected once the deployment has closed this many steps. */
  readonly atStep: number;
  /** The agent it hits; `null` for the broker and the control plane. */
  readonly agent: string | null;
  /** `pause`: how long the sandbox stays paused; `broker-restart`: how long the broker stays down; else 0. */
  readonly holdMs: number;
}

/**
 * A seeded schedule of faults spread over a run: the run's steps (less a margin at each end) are cut
 * into one slot per fault, and each fault lands on a step drawn in its slot, so faults come in order,
 * never two on one step, and cover the whole run. Which kind goes to which slot, which agent a fault
 * hits and how long it holds are drawn from the seed ({@link Rng}). Pure: no clock, no I/O.
 * @throws InvalidInputError naming `steps`, `kinds`, `perKind`, `agents`, `pauseMs`,
 *   `brokerDownMs` or `marginShare` when they do not make a schedule (too few steps for the faults, say).
 */
export function planSchedule(options: ScheduleOptions): ScheduledFault[] {
  const perKind = options.perKind ?? 3;
  const marginShare = options.marginShare ?? 0.05;
  const { steps, kinds, agents } = options;
  if (!Number.isInteger(perKind) || perKind < 0) throw new InvalidInputError('perKind', `must be a whole number >= 0, got ${perKind}`);
  if (!(marginShare >= 0 && marginShare < 0.5)) throw new InvalidInputError('marginShare', `must be in [0, 0.5), got ${marginShare}`);
  const unknown = kinds.find((kind) => !FAULT_KINDS.includes(kind));
  if (unknown !== undefined) throw new InvalidInputError('kinds', `${JSON.stringify(unknown)} is not a fault; use ${FAULT_KINDS.join(', ')}`);
  if (new Set(kinds).size !== kinds.length) throw new InvalidInputError('kinds', `names a kind twice: ${kinds.join(', ')}`);
  if (agents.length === 0 && kinds.some((kind) => AGENT_FAULTS.includes(kind))) throw new InvalidInputError('agents', `must name at least one agent for ${AGENT_FAULTS.join(', ')}`);
  for (const [field, range] of [['pauseMs', options.pauseMs], ['brokerDownMs', options.brokerDownMs]] as const) {
    if (!Number.isInteger(range.min) || !Number.isInteger(range.max) || range.min < 0 || range.max < range.min) {
      throw new InvalidInputError(field, `must be whole numbers with 0 <= min <= max, got ${range.min}..${range.max}`);
    }
  }
  const count = kinds.length * perKind;
  const margin = Math.max(1, Math.floor(steps * marginShare));
  const first = margin;
  const end = steps - margin;
  if (!Number.isInteger(steps) || end - first < count) {
    throw new InvalidInputError('steps', `${steps} steps leave ${Math.max(0, end - first)} for ${count} faults (one step each at least, ${margin} kept free at each end); use more bars or fewer faults`);
  }
  const rng = Rng.seeded(options.seed);
  const order = shuffled(kinds.flatMap((kind) => Array.from({ length: perKind }, () => kind)), rng.fork('order'));
  const place = rng.fork('steps');
  const aim = rng.fork('agents');
  const hold = rng.fork('hold');
  return order.map((kind, seq) => {
    const from = first + Math.floor(((end - first) * seq) / count);
    const to = first + Math.floor(((end - first) * (seq + 1)) / count) - 1;
    const range = kind === 'pause' ? options.pauseMs : kind === 'broker-restart' ? options.brokerDownMs : undefined;
    return {
      seq,
      kind,
      atStep: place.int(from, to),
      agent: AGENT_FAULTS.includes(kind) ? aim.pick(agents) : null,
      holdMs: range === undefined ? 0 : hold.int(range.min, range.max),
    };
  });
}

/** A Fisher–Yates shuffle of `items` by `rng` (a new array). */
function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}
