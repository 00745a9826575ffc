// Network benchmark: what a routed sandbox (its own namespace, veth pair and egress firewall) costs next
// to one on the host's network, measured in the same run through the unmodified e2b SDK.
// `npm run bench:network`; results in bench/results/network.json.
import { Sandbox } from 'e2b';
import { silentLogger } from '../src/core/index.js';
import { startLocalCloud, type LocalCloud } from '../src/localcloud/index.js';
import { report, type BenchRow } from './lib/report.js';
import { summarize, timeEach } from './lib/stats.js';
import { timeCreateAndKill } from './lib/sandboxes.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 20;

async function createAndRun(cloud: LocalCloud): Promise<Sandbox> {
  const sandbox = await Sandbox.create('base', cloud.connection);
  const result = await sandbox.commands.run('echo ready');
  if (result.stdout !== 'ready\n') throw new Error(`unexpected output ${JSON.stringify(result.stdout)}`);
  return sandbox;
}

/** Create → first command and kill, `ROUNDS` times, on a cloud whose sandboxes get `network`. */
async function lifecycle(network: 'host' | 'routed', warmPoolSize: number): Promise<{ create: number[]; kill: number[] }> {
  const cloud = await startLocalCloud({ logger: silentLogger, warmPoolSize, metricsIntervalMs: 0, sandboxNetwork: network });
  try {
    await (await createAndRun(cloud)).kill();
    return await timeCreateAndKill(cloud, ROUNDS, createAndRun);
  } finally {
    await cloud.close();
  }
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  for (const warmPoolSize of [0, 2]) {
    const host = await lifecycle('host', warmPoolSize);
    const routed = await lifecycle('routed', warmPoolSize);
    const pool = warmPoolSize === 0 ? 'cold' : 'warm pool';
    const hostCreate = summarize(host.create);
    const routedCreate = summarize(routed.create);
    rows.push({ name: `create → first command, ${pool}, host network (baseline)`, summary: hostCreate });
    rows.push({ name: `create → first command, ${pool}, routed network`, summary: routedCreate, ratio: { to: 'host network', value: routedCreate.p50 / hostCreate.p50 } });
    if (warmPoolSize === 0) {
      rows.push({ name: 'kill, host network (baseline)', summary: summarize(host.kill) });
      rows.push({ name: 'kill, routed network (veth pair and firewall table removed)', summary: summarize(routed.kill) });
    }
  }

  const cloud = await startLocalCloud({ logger: silentLogger, warmPoolSize: 0, metricsIntervalMs: 0, sandboxNetwork: 'routed' });
  try {
    const sandbox = await Sandbox.create('base', cloud.connection);
    const rules = [{ denyOut: ['8.8.8.8'] }, { denyOut: ['0.0.0.0/0'], allowOut: ['1.1.1.1', '10.0.0.0/8'] }, {}];
    let next = 0;
    const update = summarize(await timeEach(ROUNDS * 2, async () => sandbox.updateNetwork(rules[next++ % rules.length]!)));
    rows.push({ name: 'updateNetwork round trip (the rules replaced in one nftables transaction)', summary: update });
    await sandbox.kill();
  } finally {
    await cloud.close();
  }
  report('network', rows, { rounds: ROUNDS });
}

await main();
