import { InvalidInputError } from '../core/index.js';

/**
 * Every MQTT topic name and filter tradeswarm uses is built in this file (DESIGN decision 3), so the
 * topic layout can be read, and changed, in one place.
 *
 * Layout, all under one swarm's root `ts/<swarmId>/`:
 *
 * | topic                                  | carries                                   | published by (besides the control plane) |
 * |----------------------------------------|-------------------------------------------|------------------------------------------|
 * | `ts/<swarm>/step`                      | one time step of market data (all symbols) and the account | nobody |
 * | `ts/<swarm>/bar/<symbol>`              | market bars of one symbol                 | nobody                                   |
 * | `ts/<swarm>/market/bars`               | live bars coming in, from the user's own publisher (`bar` messages, every symbol on one topic), read by the bus feed | nobody (the control plane's credentials, or an external broker) |
 * | `ts/<swarm>/signal/<agentId>`          | signals an agent emits                    | that agent                               |
 * | `ts/<swarm>/vote/<agentId>`            | an agent's votes                          | that agent                               |
 * | `ts/<swarm>/decision/<agentId>`        | decisions a deciding agent takes          | that agent                               |
 * | `ts/<swarm>/order/<agentId>`           | orders an agent submits (requests to the venue) | that agent                         |
 * | `ts/<swarm>/fill/<agentId>`            | fills of that agent's orders              | nobody                                   |
 * | `ts/<swarm>/heartbeat/<agentId>`       | an agent's heartbeats (and its last will) | that agent                               |
 * | `ts/<swarm>/checkpoint/<agentId>`      | an agent's checkpoints                    | that agent                               |
 * | `ts/<swarm>/control/agent/<agentId>`   | control messages to one agent             | nobody                                   |
 * | `ts/<swarm>/control/all`               | control messages to every agent           | nobody                                   |
 * | `ts/<swarm>/inbox/<agentId>`           | direct messages (requests) to an agent    | agents allowed to send it requests       |
 * | `ts/<swarm>/reply/<clientId>`          | replies to a bus client's requests        | an agent answering a request it was sent |
 * | `ts/<swarm>/work/<queue>`              | work items, consumed through a shared subscription | nobody                          |
 *
 * The last column is {@link TOPIC_PUBLISHERS}, which the embedded broker enforces.
 *
 * Every variable segment (swarm id, agent id, symbol, queue, group, client id) is validated by
 * {@link validateSegment}, so a built topic never contains a wildcard or an extra level.
 */

/** The first level of every tradeswarm topic. */
export const TOPIC_ROOT = 'ts';

/** The prefix of an MQTT 5 shared-subscription filter: `$share/<group>/<filter>`. */
export const SHARED_PREFIX = '$share/';

/** The longest variable topic segment accepted, in characters. */
export const MAX_SEGMENT_LENGTH = 128;

/** The longest topic name or filter accepted, in UTF-8 bytes (the MQTT limit). */
export const MAX_TOPIC_BYTES = 65_535;

/** Topic kinds below `ts/<swarm>/`. */
export const TOPIC_KINDS = [
  'step',
  'bar',
  'market',
  'signal',
  'vote',
  'decision',
  'order',
  'fill',
  'heartbeat',
  'checkpoint',
  'control',
  'inbox',
  'reply',
  'work',
] as const;

/** One of {@link TOPIC_KINDS}. */
export type TopicKind = (typeof TOPIC_KINDS)[number];

/**
 * Who may publish on each kind of topic besides the control plane, which may publish on every topic
 * of its swarm. The embedded broker's access control is derived from this table and {@link parseTopic}:
 * - `owner`: only the agent the topic is named after (`signal/<agentId>`), also as its last will;
 * - `requester`: agents whose credentials name the topic's agent (a coordinator sending its workers tasks);
 * - `replier`: an agent answering a request it received on its own inbox: once, on the request's `replyTo`;
 * - `control-plane`: nobody else.
 */
export const TOPIC_PUBLISHERS = {
  step: 'control-plane',
  bar: 'control-plane',
  market: 'control-plane',
  signal: 'owner',
  vote: 'owner',
  decision: 'owner',
  order: 'owner',
  fill: 'control-plane',
  heartbeat: 'owner',
  checkpoint: 'owner',
  control: 'control-plane',
  inbox: 'requester',
  reply: 'replier',
  work: 'control-plane',
} as const satisfies Record<TopicKind, TopicPublisher>;

/** One rule of {@link TOPIC_PUBLISHERS}. */
export type TopicPublisher = 'owner' | 'requester' | 'replier' | 'control-plane';

/**
 * Checks one variable topic segment and returns it: non-empty, at most {@link MAX_SEGMENT_LENGTH}
 * characters, no `/` (it would add a level), no `+` or `#` (wildcards), no NUL or other control
 * characters, and no leading `$` (brokers reserve those topics).
 * @param field the name reported in the error (`swarmId`, `symbol`, …)
 * @throws InvalidInputError naming `field` when a rule is broken.
 */
export function validateSegment(field: string, value: unknown): string {
  const problem = segmentProblem(value);
  if (problem !== undefined) throw new InvalidInputError(field, problem);
  return value as string;
}

/** What is wrong with a topic segment (see {@link validateSegment}), or `undefined` when it is valid. */
function segmentProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return `must be a non-empty string, got ${describe(value)}`;
  if (value.length > MAX_SEGMENT_LENGTH) return `must be at most ${MAX_SEGMENT_LENGTH} characters, got ${value.length}`;
  const bad = /[/+#]/.exec(value);
  if (bad) {
    return `must not contain '${bad[0]}' (MQTT uses '/' between levels and '+'/'#' as wildcards), got ${JSON.stringify(value)}; use another separator such as '.' or '-'`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return `must not contain NUL or other control characters, got ${JSON.stringify(value)}`;
  if (value.startsWith('$')) return `must not start with '$' (brokers reserve '$' topics), got ${JSON.stringify(value)}`;
  return undefined;
}

/**
 * Checks a topic name to publish on: non-empty, at most {@link MAX_TOPIC_BYTES} UTF-8 bytes, no
 * wildcard, no NUL. Returns it.
 * @throws InvalidInputError naming `field`.
 */
export function validateTopicName(topic: unknown, field = 'topic'): string {
  const text = requireTopicText(topic, field);
  if (/[+#]/.test(text)) {
    throw new InvalidInputError(field, `must not contain the wildcards '+' or '#' when publishing, got ${JSON.stringify(text)}`);
  }
  return text;
}

/**
 * Checks a subscription filter: like a topic name, but `+` may fill a whole level and `#` may be
 * the whole last level. A shared filter (`$share/<group>/<filter>`) is accepted and checked part by part.
 * @throws InvalidInputError naming `field`.
 */
export function validateTopicFilter(filter: unknown, field = 'filter'): string {
  const text = requireTopicText(filter, field);
  const shared = parseSharedFilter(text, field);
  const levels = (shared ? shared.filter : text).split('/');
  levels.forEach((level, index) => {
    if (level.includes('#') && (level !== '#' || index !== levels.length - 1)) {
      throw new InvalidInputError(field, `'#' must be the whole last level of a filter, got ${JSON.stringify(text)}`);
    }
    if (level.includes('+') && level !== '+') {
      throw new InvalidInputError(field, `'+' must fill a whole level of a filter, got ${JSON.stringify(text)}`);
    }
  });
  return text;
}

/** The parts of a shared-subscription filter. */
export interface SharedFilter {
  readonly group: string;
  readonly filter: string;
}

/**
 * Splits `$share/<group>/<filter>` into its group and filter; `undefined` when `text` is not a
 * shared filter.
 * @throws InvalidInputError naming `field` when it starts with `$share/` but the group or filter is missing or invalid.
 */
export function parseSharedFilter(text: string, field = 'filter'): SharedFilter | undefined {
  if (!text.startsWith(SHARED_PREFIX)) return undefined;
  const rest = text.slice(SHARED_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) {
    throw new InvalidInputError(field, `a shared filter must be '$share/<group>/<filter>', got ${JSON.stringify(text)}`);
  }
  const group = validateSegment(`${field}.group`, rest.slice(0, slash));
  const filter = rest.slice(slash + 1);
  if (filter.startsWith(SHARED_PREFIX)) {
    throw new InvalidInputError(field, `a shared filter cannot contain another '$share/', got ${JSON.stringify(text)}`);
  }
  validateTopicFilter(filter, field);
  return { group, filter };
}

/**
 * The shared-subscription form of `filter` for `group`: `$share/<group>/<filter>`. Each message
 * matching `filter` goes to one member of the group.
 * @throws InvalidInputError naming `group` or `filter`.
 */
export function sharedFilter(group: string, filter: string): string {
  validateSegment('group', group);
  if (typeof filter === 'string' && filter.startsWith(SHARED_PREFIX)) {
    throw new InvalidInputError('filter', `is already a shared filter (${JSON.stringify(filter)}); pass the plain filter`);
  }
  validateTopicFilter(filter, 'filter');
  return `${SHARED_PREFIX}${group}/${filter}`;
}

/**
 * Whether `topic` matches `filter` by MQTT rules: `+` matches one level, a final `#` matches the
 * parent level and everything below it, and a filter starting with a wildcard does not match a
 * topic starting with `$`. Both arguments are assumed valid.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i];
    if (level === '#') return true;
    if (i >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/**
 * Whether some topic matches both filters (MQTT rules, `$` topics aside). Both are assumed valid
 * plain filters.
 */
export function filtersOverlap(a: string, b: string): boolean {
  const left = a.split('/');
  const right = b.split('/');
  for (let i = 0; ; i++) {
    const x = left[i];
    const y = right[i];
    if (x === '#' || y === '#') return true;
    if (x === undefined || y === undefined) return x === y;
    if (x !== '+' && y !== '+' && x !== y) return false;
  }
}

/** The filter of every topic of one swarm: `ts/<swarmId>/#`. */
export function swarmTopicFilter(swarmId: string): string {
  return `${swarmRoot(swarmId)}#`;
}

/**
 * The swarm a topic or filter belongs to: the second level of `ts/<swarmId>/…` (also inside a
 * `$share/<group>/` prefix). `undefined` when it is not a swarm topic or the swarm level is a wildcard.
 */
export function swarmIdOf(topicOrFilter: string): string | undefined {
  let text = topicOrFilter;
  if (text.startsWith(SHARED_PREFIX)) {
    const rest = text.slice(SHARED_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return undefined;
    text = rest.slice(slash + 1);
  }
  const levels = text.split('/');
  if (levels.length < 3 || levels[0] !== TOPIC_ROOT) return undefined;
  const swarmId = levels[1];
  if (swarmId === undefined || swarmId === '' || swarmId === '+' || swarmId === '#') return undefined;
  return swarmId;
}

/** A topic of a swarm taken apart by {@link parseTopic}. */
export interface ParsedTopic {
  readonly swarmId: string;
  readonly kind: TopicKind;
  /** What the topic is named after: an agent id, symbol, queue or client id; `undefined` for `step`, `market/bars` and `control/all`. */
  readonly name: string | undefined;
}

/**
 * Takes apart a topic name that {@link swarmTopics} builds: `parseTopic(swarmTopics('a').signal('x'))`
 * is `{ swarmId: 'a', kind: 'signal', name: 'x' }`. `undefined` for any other text (another root or
 * kind, a level too many or too few, an invalid segment, a wildcard, a `$share/` filter).
 */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const levels = topic.split('/');
  const [root, swarmId, kind, fourth, fifth] = levels;
  if (root !== TOPIC_ROOT || segmentProblem(swarmId) !== undefined || !isTopicKind(kind)) return undefined;
  const parsed = (name: string | undefined): ParsedTopic => ({ swarmId: swarmId as string, kind, name });
  if (kind === 'step') return levels.length === 3 ? parsed(undefined) : undefined;
  if (kind === 'market') return levels.length === 4 && fourth === 'bars' ? parsed(undefined) : undefined;
  if (kind === 'control') {
    if (levels.length === 4 && fourth === 'all') return parsed(undefined);
    return levels.length === 5 && fourth === 'agent' && segmentProblem(fifth) === undefined ? parsed(fifth) : undefined;
  }
  return levels.length === 4 && segmentProblem(fourth) === undefined ? parsed(fourth) : undefined;
}

function isTopicKind(value: string | undefined): value is TopicKind {
  return (TOPIC_KINDS as readonly (string | undefined)[]).includes(value);
}

/**
 * The topics and filters of one swarm. Build it with {@link swarmTopics}; the swarm id is checked once.
 * Methods named after one item (`bar`, `heartbeat`) return topic names to publish on; methods named
 * `all…` return filters that match the whole family.
 */
export interface SwarmTopics {
  readonly swarmId: string;
  /** `ts/<swarm>/#`: every topic of the swarm. */
  all(): string;
  /** `ts/<swarm>/step`: the control plane's time steps (bars of every symbol, the account). */
  step(): string;
  /** `ts/<swarm>/bar/<symbol>` */
  bar(symbol: string): string;
  /** `ts/<swarm>/bar/+` */
  allBars(): string;
  /**
   * `ts/<swarm>/market/bars`: live bars published into the deployment (`bar` messages of any
   * symbol), which a bus feed assembles into steps. Apart from `bar/<symbol>`, which the control
   * plane publishes out to agents.
   */
  marketBars(): string;
  /** `ts/<swarm>/signal/<agentId>` */
  signal(agentId: string): string;
  /** `ts/<swarm>/signal/+` */
  allSignals(): string;
  /** `ts/<swarm>/vote/<agentId>` */
  vote(agentId: string): string;
  /** `ts/<swarm>/vote/+` */
  allVotes(): string;
  /** `ts/<swarm>/decision/<agentId>` */
  decision(agentId: string): string;
  /** `ts/<swarm>/decision/+` */
  allDecisions(): string;
  /** `ts/<swarm>/order/<agentId>` */
  order(agentId: string): string;
  /** `ts/<swarm>/order/+` */
  allOrders(): string;
  /** `ts/<swarm>/fill/<agentId>`: fills of the orders `agentId` submitted. */
  fill(agentId: string): string;
  /** `ts/<swarm>/fill/+` */
  allFills(): string;
  /** `ts/<swarm>/heartbeat/<agentId>` */
  heartbeat(agentId: string): string;
  /** `ts/<swarm>/heartbeat/+` */
  allHeartbeats(): string;
  /** `ts/<swarm>/checkpoint/<agentId>` */
  checkpoint(agentId: string): string;
  /** `ts/<swarm>/checkpoint/+` */
  allCheckpoints(): string;
  /** `ts/<swarm>/control/agent/<agentId>`: control messages to one agent. */
  control(agentId: string): string;
  /** `ts/<swarm>/control/all`: control messages to every agent. */
  controlAll(): string;
  /** The two filters an agent subscribes to for its control messages: its own and the broadcast. */
  controlFilters(agentId: string): readonly [string, string];
  /** `ts/<swarm>/control/#`: every control message (monitoring). */
  allControl(): string;
  /** `ts/<swarm>/inbox/<agentId>`: direct messages to an agent. */
  inbox(agentId: string): string;
  /** `ts/<swarm>/reply/<clientId>`: where a bus client receives replies to its requests. */
  reply(clientId: string): string;
  /** `ts/<swarm>/work/<queue>` */
  work(queue: string): string;
  /** `$share/<group>/ts/<swarm>/work/<queue>`: consume a work queue as a member of `group`. */
  sharedWork(group: string, queue: string): string;
}

/**
 * The topic builders of swarm `swarmId`.
 * @throws InvalidInputError naming `swarmId` when it is not a valid segment ({@link validateSegment}).
 */
export function swarmTopics(swarmId: string): SwarmTopics {
  const root = swarmRoot(swarmId);
  const one = (kind: TopicKind, field: string) => (value: string) => `${root}${kind}/${validateSegment(field, value)}`;
  const every = (kind: TopicKind) => () => `${root}${kind}/+`;
  const control = (agentId: string): string => `${root}control/agent/${validateSegment('agentId', agentId)}`;
  const controlAll = (): string => `${root}control/all`;
  const work = one('work', 'queue');
  return Object.freeze({
    swarmId,
    all: () => `${root}#`,
    step: () => `${root}step`,
    bar: one('bar', 'symbol'),
    allBars: every('bar'),
    marketBars: () => `${root}market/bars`,
    signal: one('signal', 'agentId'),
    allSignals: every('signal'),
    vote: one('vote', 'agentId'),
    allVotes: every('vote'),
    decision: one('decision', 'agentId'),
    allDecisions: every('decision'),
    order: one('order', 'agentId'),
    allOrders: every('order'),
    fill: one('fill', 'agentId'),
    allFills: every('fill'),
    heartbeat: one('heartbeat', 'agentId'),
    allHeartbeats: every('heartbeat'),
    checkpoint: one('checkpoint', 'agentId'),
    allCheckpoints: every('checkpoint'),
    control,
    controlAll,
    controlFilters: (agentId: string) => [control(agentId), controlAll()] as const,
    allControl: () => `${root}control/#`,
    inbox: one('inbox', 'agentId'),
    reply: one('reply', 'clientId'),
    work,
    sharedWork: (group: string, queue: string) => sharedFilter(group, work(queue)),
  });
}

function swarmRoot(swarmId: string): string {
  return `${TOPIC_ROOT}/${validateSegment('swarmId', swarmId)}/`;
}

function requireTopicText(topic: unknown, field: string): string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new InvalidInputError(field, `must be a non-empty string, got ${describe(topic)}`);
  }
  if (topic.includes('\u0000')) throw new InvalidInputError(field, `must not contain NUL, got ${JSON.stringify(topic)}`);
  const bytes = Buffer.byteLength(topic, 'utf8');
  if (bytes > MAX_TOPIC_BYTES) {
    throw new InvalidInputError(field, `must be at most ${MAX_TOPIC_BYTES} UTF-8 bytes, got ${bytes}`);
  }
  return topic;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return value === null ? 'null' : typeof value;
}
