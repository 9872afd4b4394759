/**
 * A generation: slots running one version of the program from one spec snapshot (command,
 * env, release folder, timeouts…; spec.ts), for its whole life. It records crashes per
 * slot so the supervisor can apply backoff and detect crash loops.
 */
import type { RestartPolicy } from '../config/types.js';
import type { Timer } from './host.js';
import type { GenerationSpec } from './spec.js';
import type { WorkerStatus } from './types.js';
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

  cancelRestarts(): void {
    for (const timer of this.restartTimers.values()) timer.cancel();
    this.restartTimers.clear();
  }
}
