// Preloaded (`node --import`) into each process bench/restart-builds.bench.ts starts. When the process
// prints "listening on", it first prints `start-marks {"listeningMs":…,"cpuMs":…}`: the time since it
// began and the CPU time it used (user + system, all threads) to get there. CPU time counts the work a
// start does whatever else runs on the machine, where wall time under load counts the waits too.
// With PROFILE_START_DIR set, it also writes a CPU profile of the process's first PROFILE_START_MS
// (default 6000) ms there, as start-<pid>.cpuprofile, even when the process is SIGKILLed later
// (--cpu-prof writes only at exit).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout } from 'node:timers';

const write = process.stdout.write.bind(process.stdout);
let marked = false;
process.stdout.write = (chunk, ...rest) => {
  if (!marked && String(chunk).includes('listening on')) {
    marked = true;
    const cpu = process.cpuUsage();
    write(`start-marks ${JSON.stringify({ listeningMs: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
  }
  return write(chunk, ...rest);
};

// And as it exits (after `serve --help`, say: what loading serve's modules costs), its CPU time, on stderr.
process.on('exit', () => {
  const cpu = process.cpuUsage();
  process.stderr.write(`start-marks-exit ${JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
});

const dir = process.env.PROFILE_START_DIR;
if (dir !== undefined) {
  const session = new Session();
  session.connect();
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  setTimeout(async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `start-${process.pid}.cpuprofile`), JSON.stringify(profile));
  }, Number(process.env.PROFILE_START_MS ?? 6000)).unref();
}
