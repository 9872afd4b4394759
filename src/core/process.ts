/**
 * The real host: worker processes started through the exec shim with the listening sockets
 * at fds 3…, the readiness socket after them, and Node's IPC channel after that (the
 * two-way channel; docs/ARCHITECTURE.md, "The worker channel").
 */
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { LineSplitter } from './lines.js';
import { getPriority, setPriority } from 'node:os';
import { readPriorityFacts, workerNiceSetter } from './priority.js';
import type { Host, LaunchSpec, ProcessExit, Timer, WorkerProcess } from './host.js';
import { IpcSender } from './ipc-send.js';

/** Longest worker output or sd_notify line kept whole; longer ones are cut. */
const MAX_LINE = 16 * 1024;
/** How long an exit waits for the worker's last output lines to arrive. */
const OUTPUT_SETTLE_MS = 250;

/**
 * The exec shim. `$$` is the shell's own PID, which `exec` hands to the program, so
 * LISTEN_PID equals the worker's PID as sd_listen_fds() requires. With setpriv (util-linux)
 * the worker also gets `pdeathsig` when the master dies (PR_SET_PDEATHSIG), so no worker
 * outlives its master even if it ignores the lifeline.
 */
export function shimArgv(command: string[], pdeathsig: NodeJS.Signals | undefined): string[] {
  const sh = ['sh', '-c', 'LISTEN_PID=$$ exec "$@"', 'hitless-worker', ...command];
  return pdeathsig ? ['setpriv', `--pdeathsig=${pdeathsig.replace(/^SIG/, '')}`, '--', ...sh] : sh;
}

/**
 * Runs `start` (a spawn) with this thread at nice value `nice`, then gives the thread its
 * own back: on Linux a nice value is a thread's, and fork() copies the calling thread's, so
 * the child starts at `nice` from its first instruction. Only asked for where the master
 * may raise a priority back (priority.ts, planBootPriority); if setting it fails anyway,
 * the child starts at the master's priority and the supervisor lowers it right after.
 */
function atNice<T>(nice: number | undefined, start: () => T): T {
  if (nice === undefined) return start();
  let own: number;
  try {
    own = getPriority(0);
    setPriority(0, nice);
  } catch {
    return start();
  }
  try {
    return start();
  } finally {
    try {
      setPriority(0, own);
    } catch {
      // Not allowed after all (the plan said it was): the master's main thread stays at
      // `nice`, which only slows the master, never a worker that serves.
    }
  }
}

class ChildWorkerProcess extends EventEmitter implements WorkerProcess {
  readonly #child: ChildProcess;
  #exited = false;
  readonly #sender: IpcSender;

  constructor(launch: LaunchSpec) {
    super();
    const [file, ...args] = shimArgv(launch.command, launch.pdeathsig) as [string, ...string[]];
    this.#child = atNice(launch.nice, () => spawn(file, args, {
      cwd: launch.cwd,
      env: launch.env,
      // fds land where the stdio array puts them: sockets at 3…, then the readiness socket
      // (a socketpair, so the worker also reads EOF on it when the master dies: the
      // lifeline), then Node's IPC channel (NODE_CHANNEL_FD), which can carry fds.
      stdio: ['ignore', 'pipe', 'pipe', ...launch.fds, 'pipe', 'ipc'],
      serialization: 'json',
      // Own process group: a terminal's Ctrl-C reaches only the master, which drains
      // workers in order; SIGKILL at the drain deadline takes the worker's whole group.
      detached: true,
      uid: launch.uid,
      gid: launch.gid,
    }));
    const child = this.#child;
    child.once('exit', (code, signal) => this.#exit({ code, signal }));
    child.once('error', (err) => {
      // Only a failed spawn (for example a missing cwd) leaves no pid; 'exit' may then never come.
      if (child.pid === undefined) this.#exit({ code: null, signal: null, spawnError: err });
    });
    // The IPC channel: messages from workers that speak it; silence from the others.
    child.on('message', (message: unknown, handle: unknown) => this.emit('message', message, handle));
    child.on('error', () => {}); // a send on a channel the worker closed: send() reports it
    this.#sender = new IpcSender(child);
    this.#lines(child.stdout, (line) => this.emit('output', 'stdout', line));
    this.#lines(child.stderr, (line) => this.emit('output', 'stderr', line));
    const notify = child.stdio[3 + launch.fds.length] as Readable | null;
    this.#lines(notify, (line) => this.emit('notify', line));
    // The master keeps its end of the readiness socket open for the worker's whole life.
    this.once('exit', () => notify?.destroy());
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // already gone
    }
  }

  killGroup(): void {
    if (this.#exited) return;
    const pid = this.#child.pid;
    try {
      if (pid !== undefined) process.kill(-pid, 'SIGKILL');
    } catch {
      this.signal('SIGKILL');
    }
  }

  signalLeftovers(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (!this.#exited || pid === undefined) return;
    try {
      // Called as the exit is handled: the group id stays taken while any member lives, so
      // it names this worker's children, or nobody (ESRCH).
      process.kill(-pid, signal);
    } catch {
      // nothing left
    }
  }

  send(message: object, handle?: unknown): Promise<boolean> {
    return this.#sender.send(message, handle);
  }

  outputSettled(): Promise<void> {
    const ends = [this.#child.stdout, this.#child.stderr].map(
      (s) => new Promise<void>((resolve) => (!s || s.readableEnded || s.destroyed ? resolve() : s.once('close', () => resolve()))),
    );
    return Promise.race([Promise.all(ends).then(() => undefined), new Promise<void>((r) => setTimeout(r, OUTPUT_SETTLE_MS).unref())]);
  }

  #exit(exit: ProcessExit): void {
    if (this.#exited) return;
    this.#exited = true;
    // Handles not acknowledged are still ours: their senders give them elsewhere.
    this.#sender.close();
    this.emit('exit', exit);
  }

  #lines(stream: Readable | null, onLine: (line: string) => void): void {
    if (!stream) return;
    const split = new LineSplitter({ maxBytes: MAX_LINE, onLine });
    stream.on('data', (chunk: Buffer) => split.push(chunk));
    stream.on('end', () => split.end());
    stream.on('error', () => {});
  }
}

let setWorkerNice: ((pid: number, nice: number) => void) | undefined;

/** The host of a real master: child processes and the process's own clock. */
export const realHost: Host = {
  now: () => Date.now(),
  setTimer(fn, ms): Timer {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  spawn: (launch) => new ChildWorkerProcess(launch),
  // Read on first use, outside atNice, so the master's own nice value is its own.
  setPriority: (pid, nice) => (setWorkerNice ??= workerNiceSetter(readPriorityFacts()))(pid, nice),
};
