/**
 * A fake Host for the supervisor's unit tests (tableflip's replaceable env): a manual clock
 * with timers, and processes that do only what a test (or a default behaviour) tells them.
 * No process, socket or sleep: each test runs in milliseconds and always the same way.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Host, LaunchSpec, ProcessExit, Timer, WorkerProcess } from '../../src/core/host.js';
import { DEFAULT_CANARY, DEFAULT_DRAIN, DEFAULT_STAY_READY_MS } from '../../src/config/defaults.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { ReloadOutcome } from '../../src/core/types.js';
import { fakeConfig } from '../ops/fake-master.js';

export class FakeProcess extends EventEmitter implements WorkerProcess {
  readonly pid: number;
  readonly launch: LaunchSpec;
  readonly signals: NodeJS.Signals[] = [];
  readonly sent: { message: Record<string, unknown>; handle: unknown }[] = [];
  killed = false;
  exited = false;
  /** What send() answers (false: the channel is closed). */
  channelOpen = true;
  /** When set, send() waits for this before answering (a slow or stuck channel). */
  sendGate: Promise<void> | undefined;

  constructor(pid: number, launch: LaunchSpec) {
    super();
    this.pid = pid;
    this.launch = launch;
  }

  get generation(): number {
    return Number(this.launch.env.HITLESS_GENERATION);
  }

  get slot(): number {
    return Number(this.launch.env.HITLESS_WORKER);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exited) return;
    this.signals.push(signal);
    this.emit('signal', signal);
  }

  killGroup(): void {
    if (this.exited) return;
    this.killed = true;
    this.exit(null, 'SIGKILL');
  }

  /** Signals sent to the group's leftovers after the exit. */
  readonly leftoverSignals: NodeJS.Signals[] = [];

  signalLeftovers(signal: NodeJS.Signals): void {
    if (this.exited) this.leftoverSignals.push(signal);
  }

  async send(message: object, handle?: unknown): Promise<boolean> {
    if (this.exited || !this.channelOpen) return false;
    if (this.sendGate) await this.sendGate;
    if (this.exited || !this.channelOpen) return false;
    this.sent.push({ message: message as Record<string, unknown>, handle });
    this.emit('sent', message, handle);
    return true;
  }

  outputSettled(): Promise<void> {
    return Promise.resolve();
  }

  // What the worker program does, driven by the test:
  ready(): void {
    this.emit('notify', 'READY=1');
  }

  say(message: unknown, handle?: unknown): void {
    this.emit('message', message, handle);
  }

  print(line: string): void {
    this.emit('output', 'stderr', line);
  }

  exit(code: number | null, signal: NodeJS.Signals | null = null, spawnError?: Error): void {
    if (this.exited) return;
    this.exited = true;
    const exit: ProcessExit = spawnError ? { code, signal, spawnError } : { code, signal };
    this.emit('exit', exit);
  }
}

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** How a newly spawned fake process behaves unless a test takes over. */
export type Behaviour = (p: FakeProcess) => void;

/** Ready at once; drains and exits 0 on its stop signal or a stop message. */
export const wellBehaved: Behaviour = (p) => {
  queueMicrotask(() => p.ready());
  p.on('signal', (s: NodeJS.Signals) => {
    if (s === 'SIGTERM') queueMicrotask(() => p.exit(0));
  });
  p.on('sent', (m: Record<string, unknown>) => {
    if (m.type === 'stop') queueMicrotask(() => p.exit(0));
  });
};

export class FakeHost implements Host {
  #now = 0;
  #seq = 0;
  #timers: PendingTimer[] = [];
  #pid = 1000;
  readonly procs: FakeProcess[] = [];
  /** Behaviour of the next spawned processes (per call, by generation and slot). */
  behave: (gen: number, slot: number) => Behaviour = () => wellBehaved;
  /** Every setPriority call, in order: [pid, nice]. */
  readonly priorities: Array<[number, number]> = [];
  /** Refuses a priority change (throws like EACCES) when it returns a message. */
  refusePriority: (pid: number, nice: number) => string | undefined = () => undefined;

  setPriority(pid: number, nice: number): void {
    const refused = this.refusePriority(pid, nice);
    if (refused !== undefined) throw Object.assign(new Error(refused), { code: 'ERR_SYSTEM_ERROR', info: { code: 'EACCES' } });
    this.priorities.push([pid, nice]);
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const t: PendingTimer = { at: this.#now + ms, seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => (t.cancelled = true) };
  }

  spawn(launch: LaunchSpec): WorkerProcess {
    const p = new FakeProcess(++this.#pid, launch);
    this.procs.push(p);
    this.behave(p.generation, p.slot)(p);
    return p;
  }

  /** Moves the clock forward, running every timer that falls due, in order; settles between. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await settle();
      const due = this.#timers
        .filter((t) => !t.cancelled && t.at <= until)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#now = due.at;
      due.cancelled = true;
      due.fn();
    }
    this.#now = until;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    await settle();
  }

  /** Live processes of one generation. */
  alive(gen?: number): FakeProcess[] {
    return this.procs.filter((p) => !p.exited && (gen === undefined || p.generation === gen));
  }

  pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}

/** Lets every promise chain that can progress without the clock do so. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

export function fakeSpec(over: Partial<GenerationSpec> = {}): GenerationSpec {
  return {
    config: fakeConfig(),
    command: ['app'], cwd: '/app', release: undefined, env: {}, workers: 2,
    readyTimeout: 1000, drainTimeout: 5000, stayReady: DEFAULT_STAY_READY_MS, stopSignal: 'SIGTERM', readyAfter: null,
    restart: { backoffInitial: 100, backoffMax: 1000, maxRestarts: 3, window: 60_000 },
    strategy: 'all', canary: { ...DEFAULT_CANARY }, handover: true, drain: { ...DEFAULT_DRAIN }, uid: undefined, gid: undefined, pdeathsig: false,
    fds: [10], fdNames: ['http'],
    ...over,
  };
}

/** A raw socket handle as the IPC layer hands it over: the master only closes it. */
export class FakeHandle {
  closed = 0;
  close(): void {
    this.closed++;
  }
}

/** Runs the fake clock in 100 ms steps until `pending` settles (bounded). */
export async function until<T = ReloadOutcome>(host: FakeHost, pending: Promise<T>, maxMs = 60_000): Promise<T> {
  let done: T | undefined;
  void pending.then((o) => (done = o));
  for (let t = 0; t < maxMs && done === undefined; t += 100) await host.advance(100);
  assert.ok(done !== undefined, `not finished within ${maxMs} ms of fake time`);
  return done;
}

/**
 * The rollback scenario's middle: once `pending` (a reload from generation 1, whose workers
 * drain slowly, to generation 2) has switched, worker 2.`slot` crashes (exit 5) while
 * generation 1 still drains; then generation 1's workers exit. Resolves with the outcome.
 *
 * @example
 * const outcome = await diesLiveWhileOldDrains(host, sup.reload('bad build'), 0);
 */
export async function diesLiveWhileOldDrains(host: FakeHost, pending: Promise<ReloadOutcome>, slot: number): Promise<ReloadOutcome> {
  await settle();
  host.alive(2)[slot]?.exit(5);
  await settle();
  for (const p of host.alive(1)) p.exit(0);
  return pending;
}
