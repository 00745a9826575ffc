// What an agent may do on a tradeswarm broker, from the topic layout's TOPIC_PUBLISHERS table. Both
// brokers use it, the embedded MQTT one (broker.ts) and the in-memory one (memorybus.ts), so a publish
// one refuses the other refuses too, for the same reason.
import { InvalidInputError } from '../core/index.js';
import type { EnvelopeAddressing } from './envelope.js';
import { TOPIC_PUBLISHERS, TOPIC_ROOT, parseTopic, swarmIdOf, swarmTopics, validateSegment } from './topics.js';

/** Who a set of agent credentials (or an agent's in-memory bus) is for. */
export interface AgentIdentity {
  readonly swarmId: string;
  readonly agentId: string;
  /**
   * Agents of the swarm whose inbox this agent may send requests to (a coordinator's workers).
   * @default [] (it sends requests only to the control plane, on its own order topic)
   */
  readonly requestsTo?: readonly string[];
}

/** What one agent may do: its validated {@link AgentIdentity}. */
export interface AgentAccess {
  readonly kind: 'agent';
  /** `<swarmId>/<agentId>`: the embedded broker's username, and the key of the agent's reply grants. */
  readonly username: string;
  readonly swarmId: string;
  readonly agentId: string;
  readonly requestsTo: ReadonlySet<string>;
  /** The agent's inbox topic: requests delivered there may be answered. */
  readonly inbox: string;
}

/** Unanswered requests an agent may still reply to; past this the oldest is forgotten. */
const REMEMBERED_REQUESTS = 1024;

/**
 * Checks an agent identity.
 * @param prefix put before the field names in errors: `''` for an `issueCredentials` argument, `'agent.'` for an option
 * @throws InvalidInputError naming `swarmId`, `agentId` or `requestsTo[i]` (after `prefix`).
 */
export function compileAgentAccess(agent: AgentIdentity, prefix = ''): AgentAccess {
  if (typeof agent !== 'object' || agent === null) throw new InvalidInputError(prefix === '' ? 'agent' : prefix.slice(0, -1), 'must be { swarmId, agentId, requestsTo? }');
  const swarmId = validateSegment(`${prefix}swarmId`, agent.swarmId);
  const agentId = validateSegment(`${prefix}agentId`, agent.agentId);
  const requestsTo = agent.requestsTo ?? [];
  if (!Array.isArray(requestsTo)) throw new InvalidInputError(`${prefix}requestsTo`, 'must be an array of agent ids');
  requestsTo.forEach((peer, i) => validateSegment(`${prefix}requestsTo[${i}]`, peer));
  return { kind: 'agent', username: agentUsername(swarmId, agentId), swarmId, agentId, requestsTo: new Set(requestsTo), inbox: swarmTopics(swarmId).inbox(agentId) };
}

/**
 * The MQTT client id an agent's process connects with: `<swarmId>.<agentId>.<epoch>`, unique on a
 * broker that several swarms share (two deployments of the same strategies have the same agent ids)
 * and among the processes of one agent (a replacement and the process it replaced, which may still
 * run): a broker keeps one connection per client id, and two processes that took it from each other
 * in turn would both flap.
 */
export function agentConnectionId(swarmId: string, agentId: string, epoch: number): string {
  return `${swarmId}.${agentId}.${epoch}`;
}

/** The embedded broker's username of an agent: `<swarmId>/<agentId>`. */
export function agentUsername(swarmId: string, agentId: string): string {
  return `${swarmId}/${agentId}`;
}

/** Whether `agent` may subscribe to `filter` (a plain filter): only under its own swarm's literal prefix `ts/<swarmId>/`. */
export function agentMaySubscribe(agent: AgentAccess, filter: string): boolean {
  const prefix = `${TOPIC_ROOT}/${agent.swarmId}/`;
  return filter.length > prefix.length && filter.startsWith(prefix);
}

/**
 * The publishing rules of one broker: the table {@link TOPIC_PUBLISHERS} applied to agents, and the
 * replies each agent may still send. One reply per request delivered on the agent's own inbox, on that
 * request's reply topic, until it replies (then no more: a second reply is refused) or it is forgotten
 * (credentials revoked). Kept by username, so a reply after a reconnection is still allowed.
 */
export class PublishRights {
  private readonly replies = new Map<string, Set<string>>();

  /**
   * Why `agent` (undefined: the control plane), connected as `clientId`, may not publish on `topic`;
   * `undefined` when it may. A reply it may send uses its grant up.
   * @param addressing the message's addressing fields, read only when the topic is allowed
   */
  refusal(agent: AgentAccess | undefined, clientId: string, topic: string, addressing: () => EnvelopeAddressing | undefined): string | undefined {
    if (topic.startsWith('$')) return "a '$' topic";
    if (agent === undefined) return undefined;
    if (swarmIdOf(topic) !== agent.swarmId) return 'outside its swarm';
    const parsed = parseTopic(topic);
    if (!parsed) return 'not a topic of the swarm layout';
    const rule = TOPIC_PUBLISHERS[parsed.kind];
    if (rule === 'control-plane') return "the control plane's topic";
    if (rule === 'owner' && parsed.name !== agent.agentId) return "another agent's topic";
    if (rule === 'requester' && (parsed.name === undefined || !agent.requestsTo.has(parsed.name))) return 'an inbox its credentials do not name';
    // Subscribers believe an envelope's `from` and answer to its `replyTo`: neither may name someone else.
    const fields = addressing();
    if (fields?.from !== undefined && fields.from !== clientId) return "'from' is not the publisher's agent id";
    if (fields?.replyTo !== undefined && !isReplyTopicOf(fields.replyTo, agent.swarmId, clientId)) {
      return "'replyTo' is not the publisher's own reply topic";
    }
    if (rule === 'replier' && !this.take(agent.username, topic, fields?.correlationId)) return 'a reply to no request it received';
    return undefined;
  }

  /**
   * A message on `topic` reached `agent`: a request on its own inbox lets it answer once, on the
   * request's reply topic in its swarm.
   */
  delivered(agent: AgentAccess, topic: string, addressing: () => EnvelopeAddressing | undefined): void {
    if (topic !== agent.inbox) return;
    const fields = addressing();
    if (fields?.id === undefined || fields.replyTo === undefined) return;
    const replyTo = parseTopic(fields.replyTo);
    if (replyTo?.kind !== 'reply' || replyTo.swarmId !== agent.swarmId) return;
    let grants = this.replies.get(agent.username);
    if (!grants) {
      grants = new Set();
      this.replies.set(agent.username, grants);
    }
    grants.add(`${fields.replyTo}\u0000${fields.id}`);
    // A handler may never answer (it returned nothing, or the agent died): forget the oldest.
    if (grants.size > REMEMBERED_REQUESTS) grants.delete(grants.values().next().value as string);
  }

  /** Forgets the replies `username` may still send (its credentials were revoked). */
  forget(username: string): void {
    this.replies.delete(username);
  }

  private take(username: string, replyTo: string, requestId: string | undefined): boolean {
    return requestId !== undefined && (this.replies.get(username)?.delete(`${replyTo}\u0000${requestId}`) ?? false);
  }
}

/** Whether `topic` is the reply topic of client `clientId` in swarm `swarmId`. */
function isReplyTopicOf(topic: string, swarmId: string, clientId: string): boolean {
  const parsed = parseTopic(topic);
  return parsed?.kind === 'reply' && parsed.swarmId === swarmId && parsed.name === clientId;
}
