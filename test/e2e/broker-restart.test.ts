import { describe, expect, it } from 'vitest';
import { runBacktest } from '../../src/backtest/index.js';
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/bus/index.js';
import { silentLogger } from '../../src/core/index.js';
import { parseSwarmSpec, runSwarm } from '../../src/swarm/index.js';
import { outcome } from './swarm-hooks.js';

/**
 * Found by the chaos suite (issue 16): when the broker went away for a few seconds, the control
 * plane heard no heartbeat (its own connection was down too) and took every agent for lost; it
 * stopped them, though they would have reconnected by themselves, and started them again while the
 * broker was still down, where they failed at once (ECONNREFUSED), each failure a restart, until
 * swarm.maxRestarts within swarm.restartWindowMs was used up and the run halted. Agents are no longer
 * judged by their silence while the control plane's own connection is down.
 */
describe('a lockstep swarm on an external broker that is restarted mid-run', () => {
  it('reconnects and trades on, agents and control plane alike, with no agent lost for good', async () => {
    const spec = await parseSwarmSpec({
      name: 'broker-restart',
      data: { source: 'synthetic', seed: 5, symbols: ['AAA', 'BBB'], barCount: 200 },
      strategies: [
        { type: 'momentum', name: 'mom-a', symbol: 'AAA', lookback: 3, entryThreshold: 0.004, exitThreshold: 0, sizing: { type: 'fixed-quantity', units: 10 } },
        { type: 'sma-crossover', name: 'sma-b', symbol: 'BBB', fastPeriod: 2, slowPeriod: 5, sizing: { type: 'fixed-quantity', units: 10 } },
      ],
      swarm: { topology: 'mesh', heartbeatMs: 100, agentTimeoutMs: 1_000 },
    });
    const { report: backtest } = runBacktest(spec.backtest);
    let broker: EmbeddedBroker = await startEmbeddedBroker({ allowAnonymous: true, logger: silentLogger });
    const port = Number(new URL(broker.url).port);
    let outage: Promise<void> | undefined;
    try {
      const report = await runSwarm({
        spec,
        brokerUrl: broker.url,
        logger: silentLogger,
        onProgress: ({ step }) => {
          if (step !== 50) return;
          // Down for three seconds, then back on the same port.
          outage = broker.close().then(async () => {
            await new Promise((resolve) => setTimeout(resolve, 3_000));
            broker = await startEmbeddedBroker({ allowAnonymous: true, port, logger: silentLogger });
          });
        },
      });
      expect(report.events.filter((event) => event.kind === 'gone' || event.kind === 'lost')).toEqual([]);
      expect(report.outcome).toBe('complete');
      expect(outcome(report)).toEqual(outcome(backtest));
    } finally {
      await outage;
      await broker.close();
    }
  }, 120_000);
});
