import type { AgentConfig } from '../agent/index.js';
import type { SandboxObservation } from '../health/index.js';
import type { AgentSignal } from '../sandbox/index.js';
import type { AgentPlan } from '../topology/index.js';

/** How an agent's process ended: its exit code (-1 when a signal ended it). */
export interface AgentProcessExit {
  readonly exitCode: number;
}

/** One started agent process, wherever it runs. */
export interface LaunchedAgent {
  /** Where it runs: its sandbox's id (or a name for an agent that runs in this process). */
  readonly placement: string;
  /** Its process id where it runs. */
  readonly pid: number;
  /** Sandbox creation, bundle upload and process start, in ms (0 for a step that did not happen). */
  readonly timings: { readonly sandboxMs: number; readonly writeMs: number; readonly startMs: number };
  /** Whether the agent bundle was uploaded for it (`false`: its template held the bundle). */
  readonly bundleWritten: boolean;
  /** Resolves once, when the process has ended. */
  readonly exited: Promise<AgentProcessExit>;
  /**
   * Sends `signal` to the process.
   * @returns `false` when it had ended already.
   */
  signal(signal: AgentSignal): Promise<boolean>;
  /**
   * Ends the process: SIGTERM, up to `graceMs` to exit, then SIGKILL. When its end is still not
   * reported (its sandbox paused or unreachable), what it runs in is ended too, so that it cannot
   * come back beside a restart. Never throws.
   */
  stop(options?: { readonly graceMs?: number }): Promise<void>;
  /** The last lines it printed on stderr, oldest first. */
  stderrTail(): string[];
  /** Whether what it ran in (its sandbox) is still there, so a restart can start the agent in it again. */
  placementAlive(): Promise<boolean>;
  /** What the provider says of what it runs in (running, paused, gone) and its latest CPU and memory. Never rejects. */
  inspect(): Promise<SandboxObservation>;
  /** Stops watching the process and leaves it running, for another control plane to adopt; `exited` then never resolves. */
  detach(): void;
}

/** An agent process an earlier control plane left running, as the store last saw it (see {@link AgentLauncher.adopt}). */
export interface AdoptionCandidate {
  readonly agent: AgentPlan;
  /** Where it ran ({@link LaunchedAgent.placement}). */
  readonly placement: string;
  /** The settings it must run with: those this control plane would give it, at the epoch the store saw (`replayFirst` and `standby` aside: a promoted standby keeps its own). */
  readonly config: AgentConfig;
  readonly onStdout: (line: string) => void;
  readonly onStderr: (line: string) => void;
}

/** What {@link AgentLauncher.launch} starts. */
export interface LaunchRequest {
  readonly agent: AgentPlan;
  /** Its settings, as the agent process reads them. */
  readonly config: AgentConfig;
  /** Its previous process when this is a restart: the launcher may start it where that one ran. */
  readonly previous: LaunchedAgent | undefined;
  /**
   * A restart's rung: `same` starts it where `previous` ran when that is still there (a soft restart),
   * `new` in a new place, the previous one ended (a hard restart). @default 'same'
   */
  readonly placement?: 'same' | 'new';
  /** Each line it prints on stdout and stderr. */
  readonly onStdout: (line: string) => void;
  readonly onStderr: (line: string) => void;
}

/**
 * Starts a swarm's agent processes: in sandboxes through the SDK ({@link SandboxLauncher}), or in
 * this process over an in-memory bus for unit tests. The fleet knows agents only through it.
 */
export interface AgentLauncher {
  /** Before the first launch: clears what an earlier run of the same owner that crashed left (its sandboxes). */
  prepare(): Promise<void>;
  /** Starts one agent process. */
  launch(request: LaunchRequest): Promise<LaunchedAgent>;
  /** Ends every agent it launched and what they run in. Never throws. */
  close(): Promise<void>;
  /**
   * Takes over the processes an earlier control plane of the same swarm left running (it died, or it
   * stepped down), instead of {@link prepare}: each candidate whose process still runs where the
   * store saw it, with its settings, is adopted; every other sandbox of the swarm is ended, so that
   * nothing of the old run is left beside what is adopted or launched next.
   * @returns for each candidate, its process, or why it was not adopted; `null` where agents cannot
   *   outlive their control plane (an embedded broker or cloud), and nothing was looked for.
   */
  adopt?(candidates: readonly AdoptionCandidate[]): Promise<ReadonlyArray<LaunchedAgent | string> | null>;
  /**
   * Leaves every agent running and forgets it, for the control plane that leads next to adopt
   * ({@link close} then ends nothing of it).
   * @returns `false` when agents cannot outlive this control plane here: they are to be stopped.
   */
  release?(): Promise<boolean>;
}
