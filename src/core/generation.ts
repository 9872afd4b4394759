/**
 * A generation: slots running one version of the program from one spec snapshot (command,
 * env, release folder, timeouts…; spec.ts), for its whole life. It records crashes per
 * slot so the supervisor can apply backoff and detect crash loops.
 */
import type { RestartPolicy } from '../config/types.js';
import { formatDuration } from '../config/duration.js';
import type { Host, Timer } from './host.js';
import type { GenerationSpec } from './spec.js';
import type { MasterEvent, WorkerStatus } from './types.js';
import type { Worker } from './worker.js';

export class Generation {
  readonly id: number;
  /** Replaced only by a scale (the worker count); everything else is fixed at creation. */
  spec: GenerationSpec;
  /** The live worker of each slot (undefined while a slot is empty: crashed, retired, not yet started). */
  readonly workers: (Worker | undefined)[];
  /** Slots given up after a crash loop, with the last worker's status. */
  readonly failed = new Map<number, WorkerStatus>();
  readonly restartTimers = new Map<number, Timer>();
  /** Slots waiting out their restart backoff after a crash (state `restarting`), for status. */
  readonly restarting = new Map<number, WorkerStatus>();
  #crashes: number[][];

  constructor(id: number, spec: GenerationSpec) {
    this.id = id;
    this.spec = spec;
    this.workers = Array.from({ length: spec.workers }, () => undefined);
    this.#crashes = Array.from({ length: spec.workers }, () => []);
  }

  get size(): number {
    return this.workers.length;
  }

  get release(): string | undefined {
    return this.spec.release;
  }

  live(): Worker[] {
    return this.workers.filter((w): w is Worker => w !== undefined);
  }

  /**
   * What status says while slots of this generation are given up after a crash loop:
   * undefined while none is. When none is left serving, connections wait unanswered in the
   * sockets' queues (the master holds them, and nothing accepts), so it says that first.
   *
   * @example
   * gen.crashLoopWarning(); // 'nothing serves: all 2 workers of generation 3 failed in a crash loop (…); …'
   */
  crashLoopWarning(): string | undefined {
    if (this.failed.size === 0) return undefined;
    const { maxRestarts, window } = this.spec.restart;
    const loop = `in a crash loop (more than ${maxRestarts} crash${maxRestarts === 1 ? '' : 'es'} of a slot within ${formatDuration(window)}; not restarted)`;
    const serving = this.live().length;
    if (serving === 0 && this.restartTimers.size === 0) {
      return `nothing serves: all ${this.size} worker${this.size === 1 ? '' : 's'} of generation ${this.id} failed ${loop}, so connections wait ` +
        'unanswered in the listening sockets\' queues; fix the app and run `hitless reload` (it starts a full generation), or `hitless stop`';
    }
    const slots = [...this.failed.keys()].sort((a, b) => a - b).map((slot) => `${this.id}.${slot}`);
    return `worker${slots.length === 1 ? '' : 's'} ${slots.join(', ')} failed ${loop}; ${serving} of ${this.size} serve; \`hitless reload\` starts a full generation`;
  }

  /** Changes the number of slots (scale); returns the workers of removed slots. */
  resize(size: number): Worker[] {
    const removed: Worker[] = [];
    while (this.workers.length > size) {
      const slot = this.workers.length - 1;
      const w = this.workers.pop();
      if (w) removed.push(w);
      this.#crashes.pop();
      this.failed.delete(slot);
      this.restartTimers.get(slot)?.cancel();
      this.restartTimers.delete(slot);
      this.restarting.delete(slot);
    }
    while (this.workers.length < size) {
      this.workers.push(undefined);
      this.#crashes.push([]);
    }
    return removed;
  }

  /**
   * Records a crash of `slot` at `now` and decides: the backoff before the next start, or
   * `undefined` when the slot crashed more than `maxRestarts` times within `window`.
   */
  recordCrash(slot: number, now: number, policy: RestartPolicy): number | undefined {
    const recent = (this.#crashes[slot] ?? []).filter((t) => now - t < policy.window);
    recent.push(now);
    this.#crashes[slot] = recent;
    if (recent.length > policy.maxRestarts) return undefined;
    return Math.min(policy.backoffMax, policy.backoffInitial * 2 ** (recent.length - 1));
  }

  /**
   * When `slot` counts as crashed at most once within `restart.window` (-Infinity: already):
   * a slot that crashed twice or more is in (or near) a crash loop until its earlier
   * crashes leave the window. The supervisor gives a crash replacement kept-alive
   * connections only from then on (#settle in supervisor.ts).
   *
   * @example
   * // crashes at 10 s and 12 s, window 60 s: calm at 70 s
   * gen.calmAt(0); // 70_000
   */
  calmAt(slot: number): number {
    const crashes = this.#crashes[slot] ?? [];
    const earlier = crashes[crashes.length - 2];
    return earlier === undefined ? -Infinity : earlier + this.spec.restart.window;
  }

  /**
   * A crashed (or never put back) `slot`: after its backoff, `restart.spawn` fills it again
   * (`worker-restart`) when `restart.allowed()` still says so; after a crash loop it is
   * given up instead (`slot-failed`, shown in status with the last worker's figures).
   *
   * @example
   * gen.restartLater(slot, w.restarts, { host, spawn, emit, allowed: () => gen === current }, w);
   */
  restartLater(slot: number, restarts: number, restart: RestartSeams, crashed?: Worker): void {
    const { host, emit } = restart;
    const delay = this.recordCrash(slot, host.now(), this.spec.restart);
    if (delay === undefined) {
      const last = crashed?.snapshot();
      if (last) this.failed.set(slot, { ...last, pid: undefined, state: 'failed' });
      emit({ type: 'slot-failed', generation: this.id, slot, restarts });
      return;
    }
    emit({ type: 'worker-restart', generation: this.id, slot, attempt: restarts + 1, delayMs: delay });
    this.restartTimers.get(slot)?.cancel();
    const last = crashed?.snapshot();
    this.restarting.set(slot, {
      generation: this.id, slot, pid: undefined, startedAt: last?.startedAt ?? host.now(), readyAt: undefined, restarts,
      statusText: undefined, release: this.release, state: 'restarting', restartAt: host.now() + delay,
    });
    const timer = host.setTimer(() => {
      this.restartTimers.delete(slot);
      this.restarting.delete(slot);
      if (!restart.allowed() || this.workers[slot] !== undefined || slot >= this.size) return;
      const next = restart.spawn(slot, restarts + 1);
      // Not gated: the slot is empty anyway. A replacement that never gets ready is visible in status.
      next.waitReady(this.spec.readyTimeout).catch(() => {});
    }, delay);
    this.restartTimers.set(slot, timer);
  }

  cancelRestarts(): void {
    for (const timer of this.restartTimers.values()) timer.cancel();
    this.restartTimers.clear();
    this.restarting.clear();
  }
}

/** What {@link Generation.restartLater} needs from the supervisor. */
export interface RestartSeams {
  host: Pick<Host, 'now' | 'setTimer'>;
  /** Starts a worker in `slot` of this generation, its `restarts`-th restart. */
  spawn(slot: number, restarts: number): Worker;
  emit(e: MasterEvent): void;
  /** True while a restart may still go ahead (the generation serves, the master is not stopping). */
  allowed(): boolean;
}
