import type { Command } from 'commander';
import { type BacktestReport, runBacktest } from '../backtest/index.js';
import { describeGap } from '../market/index.js';
import { checkReportPath, runReportPage, writeReportPage } from '../report/index.js';
import { loadRunOptions, readSpecDocument } from '../runspec/index.js';
import type { GapReport, SessionReport } from '../trading/index.js';
import { commandDescription } from './commands.js';

/** `tradeswarm backtest <spec.yaml> [--json] [--html FILE]`: runs a spec's strategies in-process and prints the report. */
export function registerBacktestCommand(program: Command): void {
  program
    .command('backtest')
    .description(commandDescription('backtest'))
    .argument('<spec>', 'backtest spec (YAML); data paths are relative to its folder')
    .option('--json', 'print the report as JSON')
    .option('--html <file>', 'also write the report as one self-contained HTML page: curves, prices with fills, statistics, the spec')
    .action(async (spec: string, options: { json?: boolean; html?: string }) => {
      if (options.html !== undefined) await checkReportPath(options.html);
      const backtest = await loadRunOptions(spec);
      const { report, equityCurve } = runBacktest(backtest);
      if (options.html !== undefined) {
        const page = runReportPage({ kind: 'backtest', source: spec, report, equityCurve, bars: backtest.bars, settings: await readSpecDocument(spec) });
        await writeReportPage(options.html, page);
      }
      // On stderr in both forms, so that `--json` output stays one document (it holds them too).
      for (const warning of report.warnings) process.stderr.write(`tradeswarm: warning: ${warning.message}\n`);
      for (const gap of report.gaps) process.stderr.write(`tradeswarm: warning: gap: ${gapText(gap)}\n`);
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

export const percent = (value: number | null): string => (value === null ? '-' : `${(value * 100).toFixed(2)} %`);
const ratio = (value: number | null): string => (value === null ? '-' : value.toFixed(3));
const money = (value: number): string => value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** The report as an aligned, human-readable block. */
export function formatReport(report: BacktestReport): string {
  const barsPerSecond = report.elapsedMs > 0 ? (report.bars / report.elapsedMs) * 1000 : Infinity;
  const rows: Array<[string, string]> = [
    ['run', report.swarm],
    ['bars', `${report.bars} (${report.timeSteps} time steps)`],
    ...accountRows(report),
    ['end of data', report.endOfData],
    ...gapRows(report),
    ...riskRows(report),
    ['elapsed', `${report.elapsedMs.toFixed(1)} ms (${Math.round(barsPerSecond).toLocaleString('en-US')} bars/s)`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return `${rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')}\n`;
}

/** The account's rows of a report (backtest or swarm): trades, cash, equity and its statistics. */
export function accountRows(report: SessionReport): Array<[string, string]> {
  return [
    ['trades', String(report.trades.length)],
    ['fills', String(report.fills.length)],
    ['rejected orders', String(report.rejections.length)],
    ['initial cash', money(report.initialCash)],
    ['final equity', money(report.finalEquity)],
    ['return', percent(report.totalReturn)],
    ['Sharpe', ratio(report.sharpe)],
    ['Sortino', ratio(report.sortino)],
    ['ratios', ratioConvention(report.statistics)],
    ['max drawdown', percent(report.maxDrawdown)],
    ['win rate', percent(report.winRate)],
    ['exposure', percent(report.exposure)],
  ];
}

/** How the table's Sharpe and Sortino were computed: the convention by name (formulas in the README's "Statistics conventions") and the risk-free rate. */
function ratioConvention({ convention, riskFreeRatePerYear }: SessionReport['statistics']): string {
  return `Sharpe and Sortino annualised, ${convention} convention (statistics.convention), risk-free rate ${percent(riskFreeRatePerYear)} a year`;
}

/** A gap and what the run did about it, in words. */
export function gapText(gap: GapReport): string {
  if (gap.flattened === null) return `${describeGap(gap)}; positions were held across it (gaps.flatten: true closes them before it)`;
  const position = gap.flattened === 0 ? 'no position was open before it' : `closed ${gap.flattened > 0 ? 'a long' : 'a short'} of ${Math.abs(gap.flattened)} at the close of the bar before it`;
  const orders = gap.cancelledOrders ?? 0;
  return `${describeGap(gap)}; ${position}${orders === 0 ? '' : `, and cancelled ${orders} order${orders === 1 ? '' : 's'} still open there`}`;
}

/** One row per gap in the data (none without gaps). */
export function gapRows(report: Pick<SessionReport, 'gaps'>): Array<[string, string]> {
  return report.gaps.map((gap) => ['gap', gapText(gap)]);
}

/** Rows for consensus, the allocator and the risk manager, when the run had them (none otherwise). */
export function riskRows(report: Pick<BacktestReport, 'allocation' | 'riskState' | 'consensus' | 'rejections'>): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  if (report.consensus !== null) {
    const { rounds, agreed, agreementRate } = report.consensus;
    rows.push(['consensus', `${agreed} of ${rounds} votes agreed (${agreementRate === null ? '-' : `${(agreementRate * 100).toFixed(1)} %`})`]);
  }
  if (report.allocation !== null) {
    rows.push(['allocator', `${report.allocation.scaled} intents scaled, ${report.allocation.netted} netted`]);
  }
  const risk = report.riskState;
  if (risk !== null) {
    const states = Object.entries(risk.barsInState).map(([state, bars]) => `${state} ${bars}`).join(', ');
    rows.push(['risk states', `${states} (bars); ${risk.transitions.length} transitions; final ${risk.finalState}`]);
    const reasons = new Map<string, number>();
    for (const rejection of report.rejections) {
      if (rejection.source === 'risk') reasons.set(rejection.reason, (reasons.get(rejection.reason) ?? 0) + 1);
    }
    const detail = [...reasons].map(([reason, count]) => `${reason} ${count}`).join(', ');
    rows.push(['risk rejections', `${risk.rejected}${detail === '' ? '' : ` (${detail})`}`]);
  }
  return rows;
}
