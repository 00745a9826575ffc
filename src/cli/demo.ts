import type { Command } from 'commander';
import { startLocalCloud } from '../localcloud/index.js';
import { LOCAL_CLOUD_RATE_LIMIT, createSandboxProvider, isCommandExitError } from '../sandbox/index.js';
import { commandDescription } from './commands.js';

function elapsed(startMs: number): string {
  return `${(performance.now() - startMs).toFixed(1)} ms`;
}

/**
 * `tradeswarm demo` (what `npm start` runs): starts the local cloud in-process and drives it with the
 * unmodified E2B SDK. Every time printed is measured here, now.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(commandDescription('demo'))
    .action(async () => {
      const out = (line: string): boolean => process.stdout.write(`${line}\n`);
      let started = performance.now();
      const cloud = await startLocalCloud();
      out(`local cloud up at ${cloud.apiUrl} in ${elapsed(started)}`);
      for (const problem of cloud.support.problems) out(`warning: ${problem}`);
      try {
        const provider = createSandboxProvider({ connection: cloud.connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
        started = performance.now();
        const sandbox = await provider.create({ template: 'code-interpreter-v1', metadata: { demo: 'true' } });
        out(`sandbox ${sandbox.sandboxId} created through the e2b SDK in ${elapsed(started)}`);

        started = performance.now();
        const command = await sandbox.commands.run('echo "hello from $(hostname) as $(whoami) in $PWD"; ls /');
        out(`command finished in ${elapsed(started)}, exit code ${command.exitCode}:`);
        out(command.stdout.trimEnd().split('\n').map((line) => `  | ${line}`).join('\n'));

        started = performance.now();
        const first = await sandbox.runCode('import platform, os\ncount = 41\nprint("python", platform.python_version(), "pid", os.getpid())');
        out(`python (cold context) in ${elapsed(started)}: ${first.logs.stdout.join('').trim()}`);
        started = performance.now();
        const second = await sandbox.runCode('count + 1');
        out(`python (warm context, state kept) in ${elapsed(started)}: count + 1 = ${second.text}`);
        const failed = await sandbox.runCode('1 / 0');
        out(`python error comes back typed: ${failed.error?.name}: ${failed.error?.value}`);

        const blocked = await sandbox.commands.run('touch /etc/escape', { user: 'root' }).catch((error: unknown) => error);
        out(`root writing /etc is refused: ${isCommandExitError(blocked) ? blocked.stderr.trim() : 'NOT REFUSED'}`);

        const metrics = await sandbox.getMetrics();
        const last = metrics.at(-1);
        if (last) out(`metrics: cpu ${last.cpuUsedPct}% of ${last.cpuCount} vCPU, memory ${(last.memUsed / 1048576).toFixed(1)} MiB of ${(last.memTotal / 1048576).toFixed(0)} MiB`);
        started = performance.now();
        await sandbox.kill();
        out(`sandbox killed in ${elapsed(started)}`);
      } finally {
        await cloud.close();
      }
    });
}
