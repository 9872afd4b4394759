/**
 * One worker: its state, readiness and exit classification, over a process the host
 * started (the real one in process.ts, a fake in unit tests).
 *
 * State: starting → ready → draining → exited (or starting → exited when it fails).
 * `planned` records whether the master asked it to stop (Node cluster's
 * exitedAfterDisconnect): a planned exit is a drain, anything else is a crash.
 */
import { EventEmitter } from 'node:events';
import { HitlessError } from '../errors.js';
import {
  ADOPTED_NOT_READY, closeHandle, NOTIFY_READY, NOTIFY_STATUS, parseMessage, stopMessage, type ConnMessage, type HelloMessage, type MasterMessage, type WorkerMessage,
  type WsConnMessage, type WsHelloMessage,
} from '../lib/protocol.js';
import type { Receiver } from './handover.js';
import { unservedError, unservedListeners } from './listening.js';
import type { Host, ProcessExit, Timer, WorkerProcess } from './host.js';
import { workerEnv, type GenerationSpec } from './spec.js';
import { exitAdvice, readyTimeoutAdvice } from './advice.js';
import { formatDuration } from '../config/duration.js';
import type { Hello, WorkerState, WorkerStatus } from './types.js';

/** Lines of output kept per worker for failure reports. */
const OUTPUT_LINES_KEPT = 20;
/** sh exit codes for "not found" and "not executable". */
const EXIT_NOT_FOUND = 127;
const EXIT_NOT_EXECUTABLE = 126;

export type WorkerExit = Pick<ProcessExit, 'code' | 'signal'>;

/** What a worker said about itself (`hello`). */

/** What a worker sends besides its hello (which the Worker keeps as `hello`). */
export type WorkerReport = Exclude<WorkerMessage, HelloMessage | WsHelloMessage>;

export declare interface Worker {
  on(event: 'ready', fn: () => void): this;
  on(event: 'refused', fn: (err: HitlessError) => void): this;
  on(event: 'status', fn: (text: string) => void): this;
  on(event: 'output', fn: (stream: 'stdout' | 'stderr', line: string) => void): this;
  on(event: 'message', fn: (message: WorkerReport, handle: unknown) => void): this;
  on(event: 'exit', fn: (exit: WorkerExit) => void): this;
}

/** A worker is also where handed-over connections can go (handover.ts). */
export class Worker extends EventEmitter implements Receiver {
  readonly generation: number;
  readonly slot: number;
  readonly restarts: number;
  readonly spec: GenerationSpec;
  readonly startedAt: number;
  state: WorkerState = 'starting';
  readyAt: number | undefined;
  statusText: string | undefined;
  /** What the worker said on the two-way channel (undefined: it never did). */
  hello: Hello | undefined;
  /** The listeners it rebuilds handed-over WebSockets for (`ws-hello`, hitless/ws); undefined: none. */
  webSockets: string[] | undefined;
  /** True once the master asked this worker to stop: its exit is not a crash. */
  planned = false;
  exitInfo: WorkerExit | undefined;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<WorkerExit>;

  readonly #host: Host;
  readonly #proc: WorkerProcess;
  readonly #lines: string[] = [];
  #readyTimer: Timer | undefined;
  #spawnError: Error | undefined;
  /** Why its READY=1 was not accepted (it leaves a listening socket unserved). */
  #refusal: HitlessError | undefined;

  /** `nice`: the nice value to start at (a worker booting beside serving ones; host.ts, LaunchSpec). */
  constructor(host: Host, spec: GenerationSpec, generation: number, slot: number, restarts: number, nice?: number) {
    super();
    this.#host = host;
    this.spec = spec;
    this.generation = generation;
    this.slot = slot;
    this.restarts = restarts;
    this.startedAt = host.now();
    let resolveExited: (e: WorkerExit) => void = () => {};
    this.exited = new Promise((resolve) => (resolveExited = resolve));
    this.#proc = host.spawn({
      command: spec.command,
      cwd: spec.cwd,
      env: workerEnv(spec, generation, slot, process.pid),
      fds: spec.fds,
      pdeathsig: spec.pdeathsig ? spec.stopSignal : undefined,
      uid: spec.uid,
      gid: spec.gid,
      ...(nice === undefined ? {} : { nice }),
    });
    this.#proc.on('output', (stream: 'stdout' | 'stderr', line: string) => this.#addLine(stream, line));
    this.#proc.on('notify', (line: string) => this.#notify(line));
    this.#proc.on('message', (raw: unknown, handle: unknown) => this.#message(raw, handle));
    this.#proc.once('exit', (exit: ProcessExit) => {
      if (this.exitInfo) return;
      this.#spawnError = exit.spawnError;
      this.exitInfo = { code: exit.code, signal: exit.signal };
      this.#readyTimer?.cancel();
      this.state = 'exited';
      // A crashed worker's children stay in its process group with its listening sockets
      // (gunicorn's forked workers after its arbiter was killed): left alone they go on
      // accepting as orphans. They get the stop signal, so they drain and exit now.
      if (!this.planned) this.#proc.signalLeftovers(spec.stopSignal);
      resolveExited(this.exitInfo);
      this.emit('exit', this.exitInfo);
    });
    if (spec.readyAfter !== null) this.#readyTimer = host.setTimer(() => this.#markReady(), spec.readyAfter);
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  /** The last lines the worker printed (stdout and stderr interleaved). */
  get output(): string[] {
    return [...this.#lines];
  }

  get label(): string {
    return `${this.generation}.${this.slot}${this.pid ? ` (pid ${this.pid})` : ''}`;
  }

  /** True when this worker said on the channel that it takes handed-over connections. */
  get acceptsConnections(): boolean {
    return this.state === 'ready' && this.hello?.handover === true;
  }

  /** True when it takes a handed-over connection on `listener` now (one it said it serves, or any when it named none). */
  takes(listener: string | undefined): boolean {
    const names = this.hello?.listeners ?? [];
    return this.acceptsConnections && (listener === undefined || names.length === 0 || names.includes(listener));
  }

  /**
   * True when it takes a handed-over WebSocket on `listener` now: it said `ws-hello` for it,
   * or for any listener it serves (`ws-hello` naming none means every listener of its
   * `hello`, so a WebSocket that arrived on an address a reload removed stays in its old
   * worker, like that address's HTTP connections).
   */
  takesWebSocket(listener: string | undefined): boolean {
    const ws = this.webSockets;
    if (this.state !== 'ready' || ws === undefined) return false;
    const names = ws.length > 0 ? ws : this.hello?.listeners ?? [];
    return listener === undefined || names.length === 0 || names.includes(listener);
  }

  /**
   * Sends a connection: true once the worker got the message and handle. A worker that dies
   * first may leave the send queued forever in Node's IPC layer, so its exit counts as a
   * failed delivery: the descriptor is still the master's and goes elsewhere (a dead
   * receiver serves nothing twice).
   */
  deliver(message: ConnMessage | WsConnMessage, handle: unknown): Promise<boolean> {
    return Promise.race([this.send(message, handle), this.exited.then(() => false)]);
  }

  /** True once it exited without the master asking (a crash): connections it took went with it. */
  get diedUnasked(): boolean {
    return this.exitInfo !== undefined && !this.planned;
  }

  /**
   * Resolves when the worker announced readiness; rejects with ERR_READY_TIMEOUT,
   * ERR_WORKER_EXITED or ERR_COMMAND_NOT_FOUND (with the last output lines in details).
   */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.#refusal) return Promise.reject(this.#refusal);
    if (this.exitInfo) return this.#proc.outputSettled().then(() => Promise.reject(this.#exitError()));
    return new Promise((resolve, reject) => {
      const timer = this.#host.setTimer(() => {
        cleanup();
        // Its last STATUS line often says what it waits for (the preload names the sockets the app has not listened on).
        const last = this.statusText ? `; its last status: ${this.statusText}` : '';
        reject(new HitlessError(
          'ERR_READY_TIMEOUT',
          `worker ${this.label} did not announce readiness within ${formatDuration(timeoutMs)}: ${readyTimeoutAdvice(this.spec, this.statusText, this.output)}`,
          { details: { output: this.output } },
        ));
      }, timeoutMs);
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onRefused = (err: HitlessError): void => {
        cleanup();
        reject(err);
      };
      const onExit = (): void => {
        cleanup();
        // Give the pipes a moment to deliver the last lines: they explain the failure.
        void this.#proc.outputSettled().then(() => reject(this.#exitError()));
      };
      const cleanup = (): void => {
        timer.cancel();
        this.off('ready', onReady);
        this.off('refused', onRefused);
        this.off('exit', onExit);
      };
      this.on('ready', onReady);
      this.on('refused', onRefused);
      this.on('exit', onExit);
    });
  }

  /**
   * Asks the worker to drain and exit. With `handover`, a worker that spoke the channel
   * is asked to hand its keep-alive connections over first (a `stop` message, with at most
   * `window` of them in transit at once; `webSockets` false: no receiver takes WebSockets, so
   * it does not try to move them); every other worker gets its stop signal, as does one whose
   * channel fails.
   */
  stop(handover = false, window?: number, webSockets = true): void {
    this.planned = true;
    // Never signal a draining worker twice: a second stop signal means "exit now" to the
    // in-app library (and to most servers), which would cut its in-flight requests.
    if (this.exitInfo || this.state === 'draining') return;
    this.state = 'draining';
    if (handover && this.hello !== undefined) {
      void this.send(stopMessage(window, webSockets)).then((sent) => {
        if (!sent) this.#proc.signal(this.spec.stopSignal);
      });
      return;
    }
    this.#proc.signal(this.spec.stopSignal);
  }

  /** Force: SIGKILL the worker's process group. Returns true if it was still running. */
  kill(): boolean {
    this.planned = true;
    if (this.exitInfo) return false;
    this.#proc.killGroup();
    return true;
  }

  /** Sends on the two-way channel; false when the worker has no channel (or it closed). */
  send(message: MasterMessage, handle?: unknown): Promise<boolean> {
    if (this.exitInfo) return Promise.resolve(false);
    return this.#proc.send(message, handle);
  }

  snapshot(): WorkerStatus {
    return {
      generation: this.generation,
      slot: this.slot,
      pid: this.pid,
      state: this.state,
      startedAt: this.startedAt,
      readyAt: this.readyAt,
      restarts: this.restarts,
      statusText: this.statusText,
      release: this.spec.release,
    };
  }

  #markReady(): void {
    if (this.state !== 'starting' || this.exitInfo || this.#refusal) return;
    // A worker that said which sockets it accepts on and left one out would make that one a
    // black hole (listening.ts): its readiness is refused, like a worker that never got ready.
    const unserved = unservedListeners(this.spec, this.hello);
    if (unserved.length > 0) {
      this.#readyTimer?.cancel();
      this.#refusal = unservedError(this.label, this.spec, unserved, this.hello?.adopted ?? []);
      this.#refusal.details.output = this.output;
      this.emit('refused', this.#refusal);
      return;
    }
    this.#readyTimer?.cancel();
    this.state = 'ready';
    this.readyAt = this.#host.now();
    // The library's "listening, not ready yet: call ready()" hint is answered now; kept, it
    // would advise a serving worker to call ready() for the rest of its life (h15 F3).
    if (this.statusText?.startsWith(ADOPTED_NOT_READY)) this.statusText = undefined;
    this.emit('ready');
  }

  /** sd_notify syntax on the readiness socket: READY=1 and STATUS=… are understood. */
  #notify(line: string): void {
    // The hello (on the IPC channel) is written before READY=1 (on the readiness socket); a
    // turn of the loop lets a hello read in the same poll round arrive first.
    if (line === NOTIFY_READY) setImmediate(() => this.#markReady());
    else if (line.startsWith(NOTIFY_STATUS)) {
      this.statusText = line.slice(NOTIFY_STATUS.length);
      this.emit('status', this.statusText);
    }
  }

  #message(raw: unknown, handle: unknown): void {
    const message = parseMessage(raw, 'worker');
    if (message === undefined) {
      // Not ours (or garbage): a handle that came with it must not leak in the master.
      closeHandle(handle);
      return;
    }
    if (message.type === 'hello') {
      this.hello = { handover: message.handover === true, listeners: message.listeners ?? [], adopted: message.adopted, moves: message.moves === true };
      return;
    }
    if (message.type === 'ws-hello') {
      this.webSockets = message.listeners ?? [];
      return;
    }
    this.emit('message', message, handle);
  }

  #addLine(stream: 'stdout' | 'stderr', line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > OUTPUT_LINES_KEPT) this.#lines.shift();
    this.emit('output', stream, line);
  }

  #exitError(): HitlessError {
    const { code, signal } = this.exitInfo ?? { code: null, signal: null };
    const output = this.output;
    const program = this.spec.command[0] ?? '';
    if (this.#spawnError) {
      return new HitlessError('ERR_COMMAND_NOT_FOUND', `cannot start ${program}: ${this.#spawnError.message}`, {
        cause: this.#spawnError,
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
    const advice = exitAdvice(this.spec, output);
    return new HitlessError('ERR_WORKER_EXITED', `worker ${this.label} ${how} before it was ready${advice ? `: ${advice}` : ''}`, {
      details: { output, code, signal },
    });
  }
}
