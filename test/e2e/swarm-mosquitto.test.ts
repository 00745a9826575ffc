import { Writable } from 'node:stream';
import pino from 'pino';
import { expect, it } from 'vitest';
import { runBacktest } from '../../src/backtest/index.js';
import { parseSwarmSpec, runSwarm } from '../../src/swarm/index.js';
import { describeServerBacked, probeTcp } from '../fixtures/servers.js';

const probe = await probeTcp('Mosquitto at 127.0.0.1:1883', '127.0.0.1', 1883);

describeServerBacked(probe, 'tradeswarm run on an external broker (Mosquitto)', () => {
  it('agents in sandboxes and the control plane meet on Mosquitto, and the run matches the backtest', async () => {
    const spec = await parseSwarmSpec({
      name: 'on-mosquitto',
      data: { source: 'synthetic', seed: 9, symbols: ['AAA', 'BBB'], barCount: 60 },
      strategies: [
        { type: 'sma-crossover', symbol: 'AAA', fastPeriod: 3, slowPeriod: 12, sizing: { type: 'fixed-quantity', units: 10 } },
        { type: 'momentum', symbol: 'BBB', lookback: 5, entryThreshold: 0.005, exitThreshold: 0, sizing: { type: 'fixed-quantity', units: 10 } },
      ],
      swarm: { topology: 'mesh' },
    });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({
        write: (chunk: Buffer, _encoding, done) => {
          lines.push(chunk.toString());
          done();
        },
      }));
    const report = await runSwarm({ spec, brokerUrl: 'mqtt://127.0.0.1:1883', logger });
    const { report: backtest } = runBacktest(spec.backtest);
    expect(report.broker).toBe('mqtt://127.0.0.1:1883');
    expect(report.steps.decided).toBe(60);
    expect(backtest.trades.length).toBeGreaterThan(0);
    expect(report.trades).toEqual(backtest.trades);
    expect(report.finalEquity).toBe(backtest.finalEquity);
    // The broker's round trip was measured before the run, and a slow one named the setting to change.
    expect(report.brokerRoundTripMs).toBeGreaterThan(0);
    const warned = lines.some((line) => line.includes('set_tcp_nodelay true'));
    expect(warned).toBe((report.brokerRoundTripMs as number) > 20);
  });
});
