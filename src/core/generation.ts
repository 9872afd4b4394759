/**
 * A generation: N worker slots running one version of the program, pinned to one working
 * directory (release) for its whole life. It records crashes per slot so the supervisor
 * can apply backoff and detect crash loops.
 */
import type { RestartPolicy } from '../config/types.js';
import type { WorkerStatus } from './types.js';
import type { Worker } from './worker.js';

export class Generation {
  readonly id: number;
  readonly cwd: string;
  readonly release: string | undefined;
  /** The live worker of each slot (undefined while a crashed slot waits to restart). */
  readonly workers: (Worker | undefined)[];
  /** Slots given up after a crash loop, with the last worker's status. */
  readonly failed = new Map<number, WorkerStatus>();
  readonly restartTimers = new Map<number, NodeJS.Timeout>();
  private readonly crashes: number[][];

  constructor(id: number, size: number, cwd: string, release: string | undefined) {
    this.id = id;
    this.cwd = cwd;
    this.release = release;
    this.workers = Array.from({ length: size }, () => undefined);
    this.crashes = Array.from({ length: size }, () => []);
  }

  get size(): number {
    return this.workers.length;
  }

  live(): Worker[] {
    return this.workers.filter((w): w is Worker => w !== undefined);
  }

  /**
   * Records a crash of `slot` at `now` and decides: the backoff before the next start, or
   * `undefined` when the slot crashed more than `maxRestarts` times within `window`.
   */
  recordCrash(slot: number, now: number, policy: RestartPolicy): number | undefined {
    const recent = (this.crashes[slot] ?? []).filter((t) => now - t < policy.window);
    recent.push(now);
    this.crashes[slot] = recent;
    if (recent.length > policy.maxRestarts) return undefined;
    return Math.min(policy.backoffMax, policy.backoffInitial * 2 ** (recent.length - 1));
  }

  cancelRestarts(): void {
    for (const timer of this.restartTimers.values()) clearTimeout(timer);
    this.restartTimers.clear();
  }
}
