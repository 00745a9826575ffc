/** One line an agent's process printed. */
export interface AgentLogLine {
  /** Increasing per deployment: ask for the lines after the last one seen. */
  readonly seq: number;
  readonly atMs: number;
  readonly agentId: string;
  readonly stream: 'stdout' | 'stderr';
  readonly line: string;
}

/** Lines kept per deployment; older ones are dropped (the agents' own logs are not the store's to keep). */
const MAX_LINES = 5_000;
/** Longest line kept; the rest of a longer one is cut and marked. */
const MAX_LINE_CHARS = 4_096;

/**
 * The last lines of each deployment's agents, in memory, for `tradeswarm logs`: what agents print
 * is theirs (their log level decides how much), so it is bounded here and not written to the store;
 * a restarted server starts with none.
 */
export class AgentLogs {
  readonly #lines = new Map<string, AgentLogLine[]>();
  readonly #seq = new Map<string, number>();

  add(deploymentId: string, agentId: string, stream: 'stdout' | 'stderr', line: string, atMs: number): AgentLogLine {
    const seq = (this.#seq.get(deploymentId) ?? 0) + 1;
    this.#seq.set(deploymentId, seq);
    const kept: AgentLogLine = { seq, atMs, agentId, stream, line: line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)} [cut: ${line.length} characters]` : line };
    let lines = this.#lines.get(deploymentId);
    if (lines === undefined) this.#lines.set(deploymentId, (lines = []));
    lines.push(kept);
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    return kept;
  }

  /** The lines after `afterSeq`, of `agentId` only when given, oldest first, at most `limit`. */
  read(deploymentId: string, options: { readonly afterSeq?: number; readonly agentId?: string; readonly limit?: number } = {}): AgentLogLine[] {
    const lines = this.#lines.get(deploymentId) ?? [];
    const after = options.afterSeq ?? 0;
    return lines.filter((line) => line.seq > after && (options.agentId === undefined || line.agentId === options.agentId)).slice(0, options.limit ?? 1_000);
  }
}
