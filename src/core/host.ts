/**
 * What the supervisor needs from the operating system, as one replaceable object
 * (tableflip's `env`): start a worker process, and a clock with timers. The real host
 * (process.ts) spawns through the exec shim; unit tests pass a fake one and drive every
 * phase and failure in milliseconds, without processes or sleeps.
 */
import type { EventEmitter } from 'node:events';

/** Everything needed to start one worker process. */
export interface LaunchSpec {
  /** Program and arguments (run through the exec shim by the real host). */
  command: string[];
  cwd: string;
  /** The complete environment, LISTEN_* and HITLESS_* included. */
  env: Record<string, string | undefined>;
  /** Listening sockets, given to the child as fds 3, 4, … in this order. */
  fds: number[];
  /** Signal the worker gets when the master dies (setpriv --pdeathsig), if any. */
  pdeathsig: NodeJS.Signals | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  /**
   * Nice value to start at (a worker booting beside serving ones): the process is forked at
   * it, so even its first milliseconds (exec, the runtime's start) yield to the serving
   * workers, before setPriority could reach it. Best effort: where it cannot be set, the
   * process starts at the master's priority and is lowered right after.
   */
  nice?: number | undefined;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (no pid). */
  spawnError?: Error;
}

/**
 * A running worker process. Events:
 * - `output` (stream: 'stdout' | 'stderr', line: string)
 * - `notify` (line: string): an sd_notify line from the readiness socket (READY=1, STATUS=…)
 * - `message` (message: unknown, handle: unknown): a message on the two-way channel
 * - `exit` (exit: ProcessExit), exactly once
 */
export interface WorkerProcess extends EventEmitter {
  readonly pid: number | undefined;
  /** Sends a signal to the process (not its group); ignored once it has exited. */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILLs the process's whole group (the worker and anything it started). */
  killGroup(): void;
  /** Sends a signal to what is left of the process's group once the process itself has exited (its children). */
  signalLeftovers(signal: NodeJS.Signals): void;
  /**
   * Sends a message (and optionally a handle) on the two-way channel. Resolves true once
   * written, false when the channel is closed or the write failed.
   */
  send(message: object, handle?: unknown): Promise<boolean>;
  /** Resolves once stdout and stderr have ended (bounded: a grandchild may hold them open). */
  outputSettled(): Promise<void>;
}

export interface Timer {
  cancel(): void;
}

export interface Host {
  /** Milliseconds, monotonic enough for deadlines and backoff. */
  now(): number;
  /** Runs `fn` once after `ms`. */
  setTimer(fn: () => void, ms: number): Timer;
  spawn(launch: LaunchSpec): WorkerProcess;
  /**
   * Sets the CPU scheduling priority (nice value) of process `pid`, every thread of it and
   * of what it started (priority.ts); throws when not allowed (EACCES: raising it back
   * without the privilege). Optional: a host without it never lowers a booting worker.
   */
  setPriority?(pid: number, nice: number): void;
}
