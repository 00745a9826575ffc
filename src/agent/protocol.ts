import { z } from 'zod';
import { MessageRegistry, defineMessage } from '../bus/index.js';
import { strategySpecSchema } from '../strategy/index.js';

/**
 * The messages between a swarm's control plane and its agents, and between agents. Every payload is
 * validated at the edge by the bus (an invalid message is dropped, counted and logged, naming its field).
 *
 * Flow of one time step (the topology decides who listens to whom; see `src/topology/`):
 * 1. the control plane publishes `step` on `ts/<swarm>/step`: the bars of every symbol at that time,
 *    the account as every decision of the step must see it, and the agents taking part;
 * 2. agents that run strategies publish a `signal` with their intents on their own signal topic;
 * 3. a deciding agent collects the signals of its upstream agents, runs the decision pipeline
 *    (allocator, risk manager) and sends the approved intents to the venue with an `orders` request;
 * 4. it publishes a `decision` with the venue's answers on its own decision topic.
 */

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

/** A market bar on the wire. */
export const barSchema = z.strictObject({
  symbol: z.string().min(1).max(128),
  timeMs: z.int(),
  open: finite,
  high: finite,
  low: finite,
  close: finite,
  volume: z.number().nonnegative(),
});

/** How far an exit is from an entry's fill (`ExitDistance`); the venue checks the bounds. */
const exitDistanceSchema = z.union([z.strictObject({ points: z.number().positive() }), z.strictObject({ percent: z.number().positive().lt(100) })]);

/** An intent of a strategy, tagged with the strategy's name (`StrategyIntent`). */
export const intentSchema = z.strictObject({
  strategy: z.string().min(1),
  symbol: z.string().min(1),
  side: z.enum(['buy', 'sell']),
  quantity: z.number().positive(),
  type: z.enum(['market', 'limit', 'stop']),
  limitPrice: z.number().positive().optional(),
  stopPrice: z.number().positive().optional(),
  intent: z.string().min(1),
  confidence: z.number().gt(0).lte(1).optional(),
  exits: z
    .strictObject({ stopLoss: exitDistanceSchema.optional(), takeProfit: exitDistanceSchema.optional(), trailingStop: exitDistanceSchema.optional() })
    .optional(),
});

/** The account as every decision of a step sees it. Positions as `[symbol, signed units]` pairs. */
export const accountSchema = z.strictObject({
  equity: finite,
  peakEquity: finite,
  positions: z.array(z.tuple([z.string().min(1), finite])),
});

/** One time step as the control plane publishes it. */
export const stepSchema = z.strictObject({
  /** The time step's index, from 0. */
  index: z.int().nonnegative(),
  /** Every symbol's bar at that time, symbols in alphabetical order. */
  bars: z.array(barSchema).min(1),
  account: accountSchema,
  /** The agents taking part in this step (alive when it was published). */
  participants: z.array(z.string().min(1)),
});

/** A pipeline refusal on the wire. */
export const rejectionSchema = z.strictObject({
  intent: intentSchema,
  source: z.enum(['consensus', 'risk']),
  reason: z.string().min(1),
  message: z.string(),
});

/** The venue's answer to one order. */
export const orderResultSchema = z.strictObject({
  clientOrderId: z.string().min(1),
  status: z.enum(['accepted', 'rejected', 'duplicate', 'filled', 'partially-filled', 'cancelled']),
  reason: z.string().optional(),
});

/**
 * `step`: one time step, from the control plane. A step may be published again with the same index
 * and fewer participants when an agent died during it; agents then stop waiting for the dead one.
 */
export const StepMessage = defineMessage('step', stepSchema);

/**
 * `signal`: the intents an agent's strategies decided on step `index` (empty when none), or, from a
 * coordinator, the intents of all its workers. In a ring, the step travels with it (`step`).
 */
export const SignalMessage = defineMessage(
  'signal',
  z.strictObject({
    index: z.int().nonnegative(),
    intents: z.array(intentSchema),
    /** The strategies whose answers this signal holds. */
    strategies: z.array(z.string().min(1)),
    step: stepSchema.optional(),
  }),
);

/**
 * `decision`: what a deciding agent made of step `index`. `orders` holds the venue's answers when it
 * submitted them; a ring's risk stage leaves them out and its executor submits `approved`.
 */
export const DecisionMessage = defineMessage(
  'decision',
  z.strictObject({
    index: z.int().nonnegative(),
    approved: z.array(intentSchema),
    rejected: z.array(rejectionSchema),
    orders: z.array(orderResultSchema).optional(),
    /** sha256 of the approved intents: equal digests mean equal decisions. */
    digest: z.string().min(1),
    step: stepSchema.optional(),
  }),
);

/** `orders`: a request to the control plane's venue to submit a step's approved intents. */
export const OrdersMessage = defineMessage(
  'orders',
  z.strictObject({
    index: z.int().nonnegative(),
    approved: z.array(intentSchema),
    rejected: z.array(rejectionSchema),
    digest: z.string().min(1),
    /** The deciding agent's epoch (see `AgentConfig.epoch`): the venue refuses one below its role's latest. */
    epoch: z.int().nonnegative(),
  }),
);

/** `orders.result`: the venue's answers, in the order of the request's `approved`. */
export const OrdersResultMessage = defineMessage('orders.result', z.strictObject({ index: z.int().nonnegative(), results: z.array(orderResultSchema) }));

/** `step.refused`: the ring's entry refused a step because its circuit breaker is open. */
export const StepRefusedMessage = defineMessage('step.refused', z.strictObject({ index: z.int().nonnegative(), reason: z.string().min(1) }));

/** A message an agent sent, kept so that a step published again is answered again. */
const sentSchema = z.strictObject({ index: z.int().nonnegative(), topic: z.string().min(1), draft: z.json() });

/**
 * What an agent's checkpoint carries so that, restarted, it goes on from there instead of from the
 * first step: its strategies' and pipeline's exact state (see `snapshotStrategies` and
 * `DecisionPipeline.snapshot`), how far it signalled and decided, the decisions not yet delivered,
 * what it last sent, and its counters. `replayFrom` is the first step it must be replayed.
 */
export const resumeStateSchema = z.strictObject({
  replayFrom: z.int().nonnegative(),
  signalledUpTo: z.int().min(-1),
  decidedUpTo: z.int().min(-1),
  strategies: z.json().nullable(),
  pipeline: z.json().nullable(),
  pending: z.array(
    z.strictObject({
      index: z.int().nonnegative(),
      decided: z.strictObject({ approved: z.array(intentSchema), rejected: z.array(rejectionSchema), digest: z.string().min(1) }),
      step: stepSchema.optional(),
    }),
  ),
  sent: z.strictObject({ signal: z.array(sentSchema), decision: z.array(sentSchema) }),
  counters: z.record(z.string(), z.int().nonnegative()),
});

/**
 * Where a checkpoint lets a restarted agent go on from: the first step it must be replayed, and its
 * {@link resumeStateSchema resume state} as JSON text. Text, because the control plane only keeps it
 * and hands it back: it is parsed (and checked) by the agent that takes it up, not at every checkpoint.
 */
export const resumeSchema = z.strictObject({ replayFrom: z.int().nonnegative(), state: z.string().min(2) });

/**
 * `replay`: earlier steps sent to a restarted agent so its strategies and pipeline rebuild their
 * state (they are deterministic); it publishes nothing for them. Answered with `replay.done`.
 */
export const ReplayMessage = defineMessage(
  'replay',
  z.strictObject({
    steps: z.array(stepSchema),
    /** The upstream intents of each step, as the control plane recorded them (deciders need them). */
    signals: z.array(z.strictObject({ index: z.int().nonnegative(), intents: z.array(intentSchema) })),
    /** The last chunk: the agent then takes new work. */
    last: z.boolean(),
    /** In the first chunk: the state of the agent's last checkpoint, which it takes up before the steps after it. */
    resume: resumeSchema.optional(),
  }),
);

/** `replay.done`: the agent has replayed up to step `upTo` (−1 for none). */
export const ReplayDoneMessage = defineMessage('replay.done', z.strictObject({ upTo: z.int().min(-1) }));

/** `task`: a unit of work routed by a coordinator to one of its workers. */
export const TaskMessage = defineMessage(
  'task',
  z.strictObject({
    id: z.string().min(1).max(200),
    /** Only workers with this capability may take it. */
    capability: z.string().min(1).optional(),
    /** The indicator to compute over `values` (the work itself). */
    indicator: z.enum(['sma', 'ema', 'rsi']),
    period: z.int().min(1).max(10_000),
    values: z.array(finite).min(1).max(100_000),
  }),
);

/** `task.result`: a task's answer: the indicator's last value (null before it is ready) and who computed it. */
export const TaskResultMessage = defineMessage(
  'task.result',
  z.strictObject({ id: z.string().min(1), worker: z.string().min(1), value: z.number().nullable() }),
);

/**
 * `probe`: a request the control plane sends itself through an external broker before a run, to
 * measure a request/reply round trip (a broker that holds small packets makes it about 40 ms).
 */
export const ProbeMessage = defineMessage('probe', z.strictObject({ seq: z.int().nonnegative() }));

/** `health`: the control plane asks an agent for its own view of its health (on its inbox). */
export const HealthRequestMessage = defineMessage('health', z.strictObject({ seq: z.int().nonnegative() }));

/** `health.report`: an agent's answer to `health`: where it stands, by its own account. */
export const HealthReportMessage = defineMessage(
  'health.report',
  z.strictObject({
    seq: z.int().nonnegative(),
    /** The highest step it received (-1: none yet). */
    lastStep: z.int().min(-1),
    /** The last step it signalled / decided (-1: none). */
    signalledUpTo: z.int().min(-1),
    decidedUpTo: z.int().min(-1),
    /** Errors it caught since it started. */
    errors: z.int().nonnegative(),
    /** The step its last checkpoint was taken after (-1: none yet). */
    checkpointedUpTo: z.int().min(-1),
    /** Whether it still waits for its replay (a restarted agent). */
    replaying: z.boolean(),
    /** Why it stopped trading, when it did (a star's spoke without its hub). */
    halted: z.string().nullable(),
    /** Its process's resident memory, in bytes. */
    rssBytes: z.int().nonnegative(),
    epoch: z.int().nonnegative(),
  }),
);

/** The messages of a swarm, on top of the bus's built-in types (heartbeat, control, checkpoint, error). */
export const swarmRegistry = MessageRegistry.create(
  StepMessage,
  SignalMessage,
  DecisionMessage,
  OrdersMessage,
  OrdersResultMessage,
  StepRefusedMessage,
  ReplayMessage,
  ReplayDoneMessage,
  TaskMessage,
  TaskResultMessage,
  ProbeMessage,
  HealthRequestMessage,
  HealthReportMessage,
);

export type StepPayload = z.output<typeof stepSchema>;
export type ResumeState = z.output<typeof resumeStateSchema>;
export type Resume = z.output<typeof resumeSchema>;
export type IntentPayload = z.output<typeof intentSchema>;
export type RejectionPayload = z.output<typeof rejectionSchema>;
export type OrderResultPayload = z.output<typeof orderResultSchema>;

/** What an agent does, set by its topology's plan. */
export const AGENT_KINDS = ['trader', 'coordinator', 'decider', 'collector', 'executor'] as const;
export type AgentKind = (typeof AGENT_KINDS)[number];

/** The agent's settings, passed as JSON in the `TS_AGENT_CONFIG` env var. */
export const agentConfigSchema = z.strictObject({
  swarm: z.string().min(1),
  agentId: z.string().min(1),
  kind: z.enum(AGENT_KINDS),
  /** The strategies this agent runs, with their index in the run's list. */
  strategies: z.array(z.strictObject({ index: z.int().nonnegative(), spec: strategySpecSchema })),
  /** Every strategy of the run in order (name, symbols): the decision pipeline needs them. */
  allStrategies: z.array(z.strictObject({ name: z.string().min(1), symbols: z.array(z.string().min(1)) })),
  /** Runs the decision pipeline with these stages (an empty object: pass everything). */
  pipeline: z
    .strictObject({
      consensus: z.record(z.string(), z.unknown()).optional(),
      allocator: z.record(z.string(), z.unknown()).optional(),
      risk: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  /** Sends approved intents to the venue itself (else forwards the decision downstream). */
  submits: z.boolean(),
  /** Whether it reads the control plane's `step` topic (a ring's later stages get steps from upstream). */
  readsSteps: z.boolean(),
  /** Agents whose output (signals, or decisions for an executor or a ring's entry) it consumes. */
  upstream: z.array(z.string().min(1)),
  /** Agents whose decisions flow down to it (a hierarchy's workers and coordinators). */
  decisionsFrom: z.array(z.string().min(1)),
  /** Agents it cannot trade without (a star's hub): losing one's heartbeats halts it. */
  requires: z.array(z.string().min(1)),
  /** Agents a ring's entry watches: a silent one trips the ring's breaker. */
  ring: z.array(z.string().min(1)),
  /** Workers a coordinator routes tasks to, with their capabilities. */
  workers: z.array(z.strictObject({ id: z.string().min(1), capabilities: z.array(z.string().min(1)) })),
  /** Routing policy of a coordinator's tasks. */
  routing: z.enum(['round-robin', 'least-loaded', 'capability', 'adaptive']),
  capabilities: z.array(z.string().min(1)),
  heartbeatMs: z.int().positive(),
  /** A peer silent this long counts as lost. */
  peerTimeoutMs: z.int().positive(),
  /** The agent exits when it has heard nothing from the control plane this long. */
  controlPlaneTimeoutMs: z.int().positive(),
  /** A checkpoint every this many steps (and one on stop). */
  checkpointEverySteps: z.int().positive(),
  /** Restarted: hold new work until the control plane's replay (marked `last`) has been applied. */
  replayFirst: z.boolean(),
  /** How long a deciding agent waits for the venue's answer. */
  orderTimeoutMs: z.int().positive(),
  /**
   * Which incarnation of its role this process is: 0 first, raised by every restart and failover.
   * Its orders carry it, and the venue refuses orders of an epoch below the role's latest (fencing).
   */
  epoch: z.int().nonnegative(),
  /**
   * A hot standby: it connects, follows its agent's checkpoints, beats as `standby`, and does nothing
   * else until the control plane promotes it (a `promote` control message with its epoch); it then
   * takes the role over as a restarted agent does (its replay first).
   */
  standby: z.boolean().default(false),
});

export type AgentConfig = z.output<typeof agentConfigSchema>;

/** Env vars the control plane sets on every agent process. */
export const AGENT_ENV = {
  busUrl: 'TS_BUS_URL',
  busUsername: 'TS_BUS_USERNAME',
  busPassword: 'TS_BUS_PASSWORD',
  /** The broker's MQTT version, `4` (3.1.1) or `5`, when known; unset, the agent tries 5, then 3.1.1. */
  busProtocol: 'TS_BUS_PROTOCOL',
  config: 'TS_AGENT_CONFIG',
  logLevel: 'LOG_LEVEL',
} as const;

/** The agent id of the control plane (its heartbeats, its venue). */
export const CONTROL_PLANE_ID = 'control-plane';
