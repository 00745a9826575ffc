import type { LatencySummary } from '../core/index.js';
import type { AgentReport, SwarmReport } from '../swarm/index.js';
import { accountRows, gapRows, percent, riskRows } from './backtest.js';

const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : '-');
const latency = (summary: LatencySummary | null): string =>
  summary === null ? '-' : `p50 ${summary.p50.toFixed(2)}  p95 ${summary.p95.toFixed(2)}  p99 ${summary.p99.toFixed(2)} ms (n=${summary.count})`;

/** What each outcome means, as the report's first lines say it. */
const OUTCOMES: Readonly<Record<SwarmReport['outcome'], string>> = {
  complete: 'complete: every step decided with every agent',
  degraded: 'DEGRADED: every step decided, some without an agent that was lost (see WITHOUT)',
  halted: 'HALTED before the end of the data (see HALTED)',
  stopped: 'STOPPED on request before the end of the data; the report is partial',
};

/** A swarm report as aligned text: the account, the swarm, then one line per agent. */
export function formatSwarmReport(report: SwarmReport): string {
  const rows: Array<[string, string]> = [
    ['run', `${report.swarm} (${report.topology}, ${report.pacing}, ${report.agents.length} agents in ${report.sandbox} sandboxes, broker ${report.broker})`],
    ['steps', `${report.steps.decided} of ${report.steps.total} decided${report.steps.refused > 0 ? `, ${report.steps.refused} refused by the ring` : ''}`],
    ['outcome', OUTCOMES[report.outcome]],
    ...(report.halted === null ? [] : ([[report.outcome === 'stopped' ? 'STOPPED' : 'HALTED', `at step ${report.halted.atStep}: ${report.halted.reason}`]] as Array<[string, string]>)),
    ...report.warnings.map((warning): [string, string] => ['warning', warning.message]),
    ...report.absences.map((absence): [string, string] => [
      'WITHOUT',
      `${absence.agent} (${absence.label}) for steps ${absence.fromStep}–${absence.toStep} (${absence.steps}): ${absence.how}`,
    ]),
    ...accountRows(report),
    ...gapRows(report),
    ...riskRows({
      allocation: report.pipeline?.allocation ?? null,
      riskState: report.pipeline?.riskState ?? null,
      consensus: report.pipeline?.consensus ?? null,
      rejections: report.rejections,
    }),
    ['deciders agree', report.agreement.compared === 0 ? '- (one decider per step)' : `${percent(report.agreement.rate)} of ${report.agreement.compared} decisions compared; ${report.duplicateOrders} duplicate orders dropped by the venue`],
    ['bar → signal', latency(report.latencyMs.barToSignal)],
    ['signal → decision', latency(report.latencyMs.signalToDecision)],
    ['bar → order', latency(report.latencyMs.barToOrder)],
    ['order → fill', latency(report.latencyMs.orderToFill)],
    ['bar → fill', latency(report.latencyMs.barToFill)],
    ['step round', latency(report.latencyMs.stepRound)],
    ['all deciders decided', latency(report.latencyMs.allDecided)],
    ['messages', `${report.messages} (${Math.round(report.messagesPerSecond).toLocaleString('en-US')}/s)`],
    ['agents ready', `${ms(report.readyMs)} ms`],
    ['trading', `${ms(report.tradingMs)} ms`],
    ['elapsed', `${ms(report.elapsedMs)} ms`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
  lines.push('', agentTable(report.agents));
  if (report.events.length > 0) {
    lines.push('', `events${eventsLeftOut(report)}:`);
    for (const event of report.events) lines.push(`  step ${event.atStep}: ${event.agent} ${event.kind}: ${event.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Nothing when the report holds every event; else how many it left out, and where they went (`tradeswarm run` printed them). */
function eventsLeftOut(report: SwarmReport): string {
  const left = report.eventsTotal - report.events.length;
  return left > 0 ? ` (the last ${report.events.length} of ${report.eventsTotal}; the ${left} before them were printed on stderr as they happened)` : '';
}

function agentTable(agents: readonly AgentReport[]): string {
  const header = ['agent', 'role', 'in', 'out', 'decisions', 'errors', 'restarts', 'sandbox ms', 'ready ms', 'status'];
  const rows = agents.map((agent) => [
    agent.id,
    agent.label,
    String(agent.messagesIn ?? '-'),
    String(agent.messagesOut ?? '-'),
    String(agent.decisions ?? '-'),
    String(agent.errors ?? '-'),
    String(agent.restarts),
    ms(agent.startMs.sandbox),
    ms(agent.startMs.ready),
    agent.status,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)));
  const render = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd();
  return [render(header), ...rows.map(render)].join('\n');
}
