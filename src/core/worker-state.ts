/**
 * Which rows of a status snapshot are workers that run: a slot given up after a crash loop
 * (`failed`) or waiting out its restart backoff (`restarting`) has no process, and an exited
 * worker none any more. Health, `hitless list` and the traffic table count only the others.
 */
import type { WorkerState } from './types.js';

const NO_PROCESS: ReadonlySet<WorkerState> = new Set<WorkerState>(['exited', 'failed', 'restarting']);

/**
 * True for a worker that runs (starting, ready or draining).
 *
 * @example
 * s.workers.filter((w) => w.generation === s.generation && runs(w));
 */
export function runs(w: { state: WorkerState }): boolean {
  return !NO_PROCESS.has(w.state);
}
