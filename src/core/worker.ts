/**
 * One worker process: spawned with the listening sockets at fds 3…, a readiness pipe
 * after them, and the systemd socket-activation variables; watched until it exits.
 *
 * State: starting → ready → draining → exited (or starting → exited when it fails).
 * `planned` records whether the master asked it to stop (Node cluster's
 * exitedAfterDisconnect): a planned exit is a drain, anything else is a crash.
 */
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { HitlessError } from '../errors.js';
import { LISTEN_FDS_START } from './listeners.js';
import type { WorkerState, WorkerStatus } from './types.js';

/** Lines of output kept per worker for failure reports. */
const OUTPUT_LINES_KEPT = 20;
const MAX_LINE = 16 * 1024;
/** sh exit codes for "not found" and "not executable". */
const EXIT_NOT_FOUND = 127;
const EXIT_NOT_EXECUTABLE = 126;

/**
 * The exec shim. `$$` is the shell's own PID, which `exec` hands to the program, so
 * LISTEN_PID equals the worker's PID as sd_listen_fds() requires. With setpriv (util-linux)
 * the worker also gets `stopSignal` when the master dies (PR_SET_PDEATHSIG), so no worker
 * outlives its master even if it ignores the lifeline pipe.
 */
export function shimArgv(command: string[], pdeathsig: NodeJS.Signals | undefined): string[] {
  const sh = ['sh', '-c', 'LISTEN_PID=$$ exec "$@"', 'hitless-worker', ...command];
  return pdeathsig ? ['setpriv', `--pdeathsig=${pdeathsig.replace(/^SIG/, '')}`, '--', ...sh] : sh;
}

export interface WorkerSpec {
  generation: number;
  slot: number;
  restarts: number;
  command: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  release: string | undefined;
  fds: number[];
  fdNames: string[];
  stopSignal: NodeJS.Signals;
  readyAfter: number | null;
  pdeathsig: boolean;
  uid?: number | undefined;
  gid?: number | undefined;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export declare interface Worker {
  on(event: 'ready', fn: () => void): this;
  on(event: 'status', fn: (text: string) => void): this;
  on(event: 'output', fn: (stream: 'stdout' | 'stderr', line: string) => void): this;
  on(event: 'exit', fn: (exit: WorkerExit) => void): this;
}

export class Worker extends EventEmitter {
  readonly generation: number;
  readonly slot: number;
  readonly restarts: number;
  readonly release: string | undefined;
  readonly startedAt = Date.now();
  state: WorkerState = 'starting';
  readyAt: number | undefined;
  statusText: string | undefined;
  /** True once the master asked this worker to stop: its exit is not a crash. */
  planned = false;
  exitInfo: WorkerExit | undefined;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<WorkerExit>;

  private readonly child: ChildProcess;
  private readonly spec: WorkerSpec;
  private readonly lines: string[] = [];
  private readyTimer: NodeJS.Timeout | undefined;
  private spawnError: Error | undefined;
  private resolveExited: (exit: WorkerExit) => void = () => {};

  constructor(spec: WorkerSpec) {
    super();
    this.spec = spec;
    this.generation = spec.generation;
    this.slot = spec.slot;
    this.restarts = spec.restarts;
    this.release = spec.release;
    const readyFd = LISTEN_FDS_START + spec.fds.length;
    const env: Record<string, string | undefined> = {
      ...spec.env,
      LISTEN_FDS: String(spec.fds.length),
      LISTEN_FDNAMES: spec.fdNames.join(':'),
      HITLESS_READY_FD: String(readyFd),
      HITLESS_GENERATION: String(spec.generation),
      HITLESS_WORKER: String(spec.slot),
      HITLESS_STOP_SIGNAL: spec.stopSignal,
      HITLESS_MASTER_PID: String(process.pid),
      HITLESS_RELEASE: spec.release,
    };
    if (spec.fds.length === 0) delete env.LISTEN_FDS;
    const [file, ...args] = shimArgv(spec.command, spec.pdeathsig ? spec.stopSignal : undefined) as [string, ...string[]];
    this.child = spawn(file, args, {
      cwd: spec.cwd,
      env,
      // fds land where the stdio array puts them: sockets at 3…, the readiness pipe (a
      // socketpair, so the worker can also read EOF from it when the master dies) after.
      stdio: ['ignore', 'pipe', 'pipe', ...spec.fds, 'pipe'],
      // Own process group: a terminal's Ctrl-C reaches only the master, which drains
      // workers in order; SIGKILL at the drain deadline takes the worker's whole group.
      detached: true,
      uid: spec.uid,
      gid: spec.gid,
    });
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    this.child.once('exit', (code, signal) => this.onExit({ code, signal }));
    this.child.once('error', (err) => {
      // Only a failed spawn (for example a missing cwd) leaves no pid; 'exit' may then never come.
      if (this.child.pid !== undefined) return;
      this.spawnError = err;
      this.onExit({ code: null, signal: null });
    });
    this.pipeLines(this.child.stdout, 'stdout');
    this.pipeLines(this.child.stderr, 'stderr');
    this.watchReadiness(this.child.stdio[readyFd] as Readable | null);
    if (spec.readyAfter !== null) {
      this.readyTimer = setTimeout(() => this.markReady(), spec.readyAfter);
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last lines the worker printed (stdout and stderr interleaved). */
  get output(): string[] {
    return [...this.lines];
  }

  /**
   * Resolves when the worker announced readiness; rejects with ERR_READY_TIMEOUT,
   * ERR_WORKER_EXITED or ERR_COMMAND_NOT_FOUND (with the last output lines in details).
   */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.exitInfo) return Promise.reject(this.exitError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new HitlessError(
            'ERR_READY_TIMEOUT',
            `worker ${this.label} did not announce readiness within ${timeoutMs} ms (write READY=1 to HITLESS_READY_FD, or set readyAfter)`,
            { details: { output: this.output } },
          ),
        );
      }, timeoutMs);
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onExit = (): void => {
        cleanup();
        // Give the pipes a moment to deliver the last lines: they explain the failure.
        void this.outputSettled().then(() => reject(this.exitError()));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('ready', onReady);
        this.off('exit', onExit);
      };
      this.on('ready', onReady);
      this.on('exit', onExit);
    });
  }

  /** Ask the worker to drain and exit (its stop signal). */
  stop(): void {
    this.planned = true;
    // Never signal a draining worker twice: a second stop signal means "exit now" to the
    // in-app library (and to most servers), which would cut its in-flight requests.
    if (this.exitInfo || this.state === 'draining') return;
    this.state = 'draining';
    this.signal(this.spec.stopSignal);
  }

  /** Force: SIGKILL the worker's process group. Returns true if it was still running. */
  kill(): boolean {
    this.planned = true;
    if (this.exitInfo) return false;
    const pid = this.child.pid;
    try {
      if (pid !== undefined) process.kill(-pid, 'SIGKILL');
    } catch {
      this.signal('SIGKILL');
    }
    return true;
  }

  snapshot(): WorkerStatus {
    return {
      generation: this.generation,
      slot: this.slot,
      pid: this.child.pid,
      state: this.state,
      startedAt: this.startedAt,
      readyAt: this.readyAt,
      restarts: this.restarts,
      statusText: this.statusText,
      release: this.release,
    };
  }

  get label(): string {
    return `${this.generation}.${this.slot}${this.child.pid ? ` (pid ${this.child.pid})` : ''}`;
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }

  private markReady(): void {
    if (this.state !== 'starting' || this.exitInfo) return;
    clearTimeout(this.readyTimer);
    this.state = 'ready';
    this.readyAt = Date.now();
    this.emit('ready');
  }

  private onExit(exit: WorkerExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    clearTimeout(this.readyTimer);
    this.state = 'exited';
    this.resolveExited(exit);
    this.emit('exit', exit);
  }

  private exitError(): HitlessError {
    const { code, signal } = this.exitInfo ?? { code: null, signal: null };
    const output = this.output;
    const program = this.spec.command[0] ?? '';
    if (this.spawnError) {
      return new HitlessError('ERR_COMMAND_NOT_FOUND', `cannot start ${program}: ${this.spawnError.message}`, {
        cause: this.spawnError,
        details: { output },
      });
    }
    if (code === EXIT_NOT_FOUND || code === EXIT_NOT_EXECUTABLE) {
      const what = code === EXIT_NOT_FOUND ? 'not found' : 'not executable';
      return new HitlessError(
        'ERR_COMMAND_NOT_FOUND',
        `worker command ${JSON.stringify(program)} ${what} (cwd ${this.spec.cwd}): check "command" and PATH`,
        { details: { output, code } },
      );
    }
    const how = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
    return new HitlessError('ERR_WORKER_EXITED', `worker ${this.label} ${how} before it was ready`, {
      details: { output, code, signal },
    });
  }

  /** Resolves once stdout and stderr have ended (bounded: a grandchild may hold them open). */
  private outputSettled(): Promise<void> {
    const ends = [this.child.stdout, this.child.stderr].map(
      (s) => new Promise<void>((resolve) => (!s || s.readableEnded || s.destroyed ? resolve() : s.once('close', () => resolve()))),
    );
    return Promise.race([Promise.all(ends).then(() => undefined), new Promise<void>((r) => setTimeout(r, 250).unref())]);
  }

  private pipeLines(stream: Readable | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      if (partial.length > MAX_LINE) {
        parts.push(partial);
        partial = '';
      }
      for (const line of parts) this.addLine(name, line);
    });
    stream.on('end', () => {
      if (partial) this.addLine(name, partial);
      partial = '';
    });
    stream.on('error', () => {});
  }

  private addLine(stream: 'stdout' | 'stderr', line: string): void {
    this.lines.push(line);
    if (this.lines.length > OUTPUT_LINES_KEPT) this.lines.shift();
    this.emit('output', stream, line);
  }

  /** sd_notify syntax: newline-separated VAR=value; READY=1 and STATUS=… are understood. */
  private watchReadiness(pipe: Readable | null): void {
    if (!pipe) return;
    let partial = '';
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = (parts.pop() ?? '').slice(0, MAX_LINE);
      for (const line of parts) {
        if (line === 'READY=1') this.markReady();
        else if (line.startsWith('STATUS=')) {
          this.statusText = line.slice('STATUS='.length);
          this.emit('status', this.statusText);
        }
      }
    });
    pipe.on('error', () => {});
    // The master keeps its end open for the worker's whole life: the worker reads EOF on
    // it only when the master is gone (the lifeline).
    this.exited.then(() => pipe.destroy(), () => {});
  }
}
