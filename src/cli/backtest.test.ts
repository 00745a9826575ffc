// The backtest command's text report: what its statistics rows say.
import { describe, expect, it } from 'vitest';
import { VALID } from '../../test/fixtures/specs.js';
import { runBacktest } from '../backtest/index.js';
import { parseSpec, runOptionsFromSpec } from '../runspec/index.js';
import { formatReport } from './backtest.js';

describe('backtest text report', () => {
  it('names the Sharpe and Sortino convention and the risk-free rate the run used', async () => {
    const text = async (statistics?: Record<string, unknown>): Promise<string> =>
      formatReport(runBacktest(await runOptionsFromSpec(parseSpec({ ...VALID, ...(statistics === undefined ? {} : { statistics }) }), '.')).report);
    expect(await text()).toMatch(/^ratios +Sharpe and Sortino annualised, arithmetic convention \(statistics\.convention\), risk-free rate 0\.00 % a year$/m);
    expect(await text({ convention: 'geometric', riskFreeRatePerYear: 0.02 })).toMatch(
      /^ratios +Sharpe and Sortino annualised, geometric convention \(statistics\.convention\), risk-free rate 2\.00 % a year$/m,
    );
  });
});
