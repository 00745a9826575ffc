import type { RunningSwarm, SwarmReport } from '../../src/swarm/index.js';

/**
 * Run hooks that send `signal` (SIGKILL, as a crash would, by default) to the agents `choose` names
 * from the plan once step `atStep` is decided. `hit` lists the agents signalled.
 */
export function faultAt(atStep: number, choose: (plan: RunningSwarm['plan']) => readonly string[], signal: 'SIGKILL' | 'SIGSTOP' = 'SIGKILL') {
  let running: RunningSwarm | undefined;
  const hit: string[] = [];
  return {
    hit,
    onReady: (swarm: RunningSwarm): void => {
      running = swarm;
    },
    onProgress: ({ step }: { step: number }): void => {
      if (step !== atStep || running === undefined) return;
      for (const id of choose(running.plan)) {
        hit.push(id);
        void running.kill(id, signal);
      }
    },
  };
}

/** The fields that must match between a swarm run and the backtest of the same spec. */
export function outcome(report: Pick<SwarmReport, 'trades' | 'fills' | 'finalEquity' | 'rejections'>) {
  return {
    trades: report.trades,
    fills: report.fills.map((fill) => ({ ...fill })),
    finalEquity: report.finalEquity,
    rejections: report.rejections.map(({ clientOrderId, source, reason }) => ({ clientOrderId, source, reason })),
  };
}
