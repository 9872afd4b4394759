/**
 * Starting slots: the one step that brings workers up, shared by the first generation
 * (Supervisor.start), a scale-up, and the strategies (a whole new generation, a canary, the
 * rest after a canary, one rolling slot). Spawn a worker in each slot, wait until every one
 * is ready; on the first failure kill them all and report it. A set of new workers is
 * whole or gone: never half-started.
 */
import { HitlessError } from '../errors.js';
import type { Worker } from './worker.js';

export interface SlotStarter {
  /** Starts a worker in `slot`. */
  spawn(slot: number): Worker;
  /** Resolves when `w` is ready; rejects when it fails (exit, timeout) or the wait ends otherwise (a stop). */
  ready(w: Worker): Promise<void>;
}

/**
 * Starts a worker in each of `slots` and resolves with them once all are ready, at most
 * `concurrency` booting at once (the next spawns when one is ready: `bootConcurrency`,
 * issue 23). A worker that was ready but exited before the others were is a failure too
 * (ERR_WORKER_EXITED). On the first failure no more are spawned, every one started is
 * killed, its exit awaited, and the failure rethrown.
 *
 * @example
 * const workers = await startSlots(slotRange(0, gen.size), { spawn: (s) => spawnIn(gen, s), ready: (w) => w.waitReady(gen.spec.readyTimeout) });
 * await startSlots(slotRange(0, 4), starter, 1); // one after another
 */
export async function startSlots(slots: readonly number[], starter: SlotStarter, concurrency = Infinity): Promise<Worker[]> {
  const workers: Worker[] = [];
  let failed = false;
  // One lane per worker booting at once; each lane starts the next slot when its worker is ready.
  const lane = async (): Promise<void> => {
    while (!failed && workers.length < slots.length) {
      const w = starter.spawn(slots[workers.length] as number);
      workers.push(w);
      await starter.ready(w);
    }
  };
  try {
    const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, slots.length)) }, lane);
    await Promise.all(lanes.map((p) => p.catch((err: unknown) => {
      failed = true;
      throw err;
    })));
    if (workers.some((w) => w.exitInfo !== undefined)) throw diedAfterReady(workers);
  } catch (err) {
    await discard(workers);
    throw err;
  }
  return workers;
}

/**
 * Slots `from` (inclusive) to `to` (exclusive).
 *
 * @example
 * slotRange(2, 4); // [2, 3]
 */
export function slotRange(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

/** Kills `workers` at once and waits for their exit (rejected workers serve nothing worth draining). */
export async function discard(workers: Worker[]): Promise<void> {
  for (const w of workers) w.kill();
  await Promise.all(workers.map((w) => w.exited));
}

/**
 * The error of a new worker that exited after it was ready, before its generation went live.
 *
 * @example
 * throw diedAfterReady([w]); // ERR_WORKER_EXITED: worker 8.1 (pid 4242) exited with code 1 after it was ready, …
 */
export function diedAfterReady(workers: Worker[]): HitlessError {
  const w = workers.find((x) => x.exitInfo !== undefined) ?? workers[0];
  const how = w?.exitInfo?.signal ? `was killed by ${w.exitInfo.signal}` : `exited with code ${String(w?.exitInfo?.code)}`;
  return new HitlessError('ERR_WORKER_EXITED', `worker ${w?.label ?? ''} ${how} after it was ready, before the new generation went live`, {
    details: { output: w?.output ?? [] },
  });
}
