/**
 * Starting slots: the one step that brings workers up, shared by the first generation
 * (Supervisor.start), a scale-up, and the strategies (a whole new generation, a canary, the
 * rest after a canary, one rolling slot). Spawn a worker in each slot, wait until every one
 * is ready; on the first failure send them all away (discard) and report it. A set of new
 * workers is whole or gone: never half-started.
 */
import { HitlessError } from '../errors.js';
import type { Host } from './host.js';
import { drain } from './retire.js';
import type { Worker } from './worker.js';

/**
 * The longest a rejected new worker has to finish what it holds after its stop signal,
 * before SIGKILL (lower when the spec's drainTimeout is). A worker accepts on the shared
 * sockets as soon as it adopts them, before its READY=1, so one that never got ready may
 * hold requests when it is rejected: they are ordinary requests caught mid-flight (the
 * serving generation takes every new one meanwhile), so a few seconds lets them finish,
 * while a worker that ignores its stop signal (a busy loop) is gone soon, and a run of
 * failed reloads does not pile up drainTimeout (30 s by default) worth of processes each.
 */
export const REJECTED_GRACE_MS = 5_000;

export interface SlotStarter {
  /** Starts a worker in `slot`. */
  spawn(slot: number): Worker;
  /** Resolves when `w` is ready; rejects when it fails (exit, timeout) or the wait ends otherwise (a stop). */
  ready(w: Worker): Promise<void>;
  /** The clock the rejected workers' grace runs on (discard). */
  host: Pick<Host, 'setTimer' | 'now'>;
}

/**
 * Starts a worker in each of `slots` and resolves with them once all are ready, at most
 * `concurrency` booting at once (the next spawns when one is ready: `bootConcurrency`,
 * issue 23). A worker that was ready but exited before the others were is a failure too
 * (ERR_WORKER_EXITED). On the first failure no more are spawned, every one started is sent
 * away (discard: its stop signal now, SIGKILL after the grace, not awaited), and the failure
 * rethrown at once. Until they exit they stay among the supervisor's workers (status, stop).
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
    void discard(workers, starter.host);
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

/**
 * Sends rejected new workers away: each gets its stop signal now (never a hand-over: nothing
 * takes their connections) and SIGKILL once {@link REJECTED_GRACE_MS} (or its drainTimeout,
 * when lower) has passed. A worker already draining (retired, or discarded before) is left
 * to what retires it. Resolves once all have exited; callers need not wait for it, the
 * supervisor keeps each worker until its exit (status lists it `draining`, a stop awaits it).
 *
 * @example
 * void discard(workers, host); // the reload's failure is reported now; the grace runs on
 */
export async function discard(workers: Worker[], host: Pick<Host, 'setTimer' | 'now'>): Promise<void> {
  const going = workers.filter((w) => w.exitInfo === undefined && w.state !== 'draining');
  for (const w of going) w.stop();
  const grace = Math.min(REJECTED_GRACE_MS, ...going.map((w) => w.spec.drainTimeout));
  await drain(going, grace, host);
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
