// Network benchmark: what a routed sandbox (its own namespace, veth pair and egress firewall) costs next
// to one on the host's network, measured in the same run through the unmodified e2b SDK.
// `npm run bench:network`; results in bench/results/network.json.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
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

/** Seconds of each of `count` HTTP requests curl in `sandbox` makes to `url`, as curl times them (its process start left out). */
async function curlTimes(sandbox: Sandbox, url: string, count: number): Promise<number[]> {
  const result = await sandbox.commands.run(`for i in $(seq ${count}); do curl -sS -o /dev/null -w '%{time_total}\\n' ${url} || exit 1; done`, { timeoutMs: 120_000 });
  return result.stdout.trim().split('\n').map((line) => Number(line) * 1000);
}

/**
 * An HTTP request from a routed sandbox to a server on the host's own address: straight through its
 * firewall (baseline), and through the egress proxy, which a sandbox whose rules name a host uses.
 */
async function proxyRows(cloud: LocalCloud): Promise<BenchRow[]> {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((one) => one?.family === 'IPv4' && !one.internal)?.address;
  if (address === undefined) throw new Error('this machine has no IPv4 address but its loopback, which a routed sandbox does not reach');
  let withHeader = 0;
  const server = createServer((request, response) => {
    if (request.headers['x-bench'] === 'egress') withHeader++;
    response.end('ok');
  }).listen(0, address);
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://${address}:${(server.address() as AddressInfo).port}/`;
  const direct = await Sandbox.create('base', { ...cloud.connection, network: { denyOut: [] } });
  // A rule for the address: the sandbox is pointed at the proxy, which reads each request and sets the header.
  const proxied = await Sandbox.create('base', { ...cloud.connection, network: { rules: { [address]: [{ transform: { headers: { 'X-Bench': 'egress' } } }] } } });
  try {
    const requests = ROUNDS * 10;
    await curlTimes(direct, url, 3);
    await curlTimes(proxied, url, 3);
    const straight = summarize(await curlTimes(direct, url, requests));
    withHeader = 0;
    const through = summarize(await curlTimes(proxied, url, requests));
    if (withHeader !== requests) throw new Error(`${withHeader} of ${requests} requests through the egress proxy came with the rule's header`);
    return [
      { name: 'HTTP request from a routed sandbox to the host, through its firewall (baseline)', summary: straight },
      { name: 'HTTP request from a routed sandbox to the host, through the egress proxy (a rule sets a header)', summary: through, ratio: { to: 'through its firewall', value: through.p50 / straight.p50 } },
    ];
  } finally {
    await Promise.all([direct.kill(), proxied.kill()]);
    server.close();
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
    rows.push(...(await proxyRows(cloud)));
  } finally {
    await cloud.close();
  }
  report('network', rows, { rounds: ROUNDS });
}

await main();
