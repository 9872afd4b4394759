/**
 * Who this process is under the master (read from the environment the master sets).
 */
import type { WorkerInfo } from './types.js';

function int(raw: string | undefined): number | undefined {
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined;
}

/**
 * Describes this worker: whether the hitless master runs it, and its generation, slot and
 * release. Standalone: `{ managed: false }`.
 *
 * @example
 * const { managed, generation, worker } = workerInfo();
 * status(managed ? `gen ${generation} worker ${worker}` : 'standalone');
 */
export function workerInfo(): WorkerInfo {
  const env = process.env;
  const info: WorkerInfo = { managed: Boolean(env.HITLESS_READY_FD || env.HITLESS_GENERATION) };
  const generation = int(env.HITLESS_GENERATION);
  const worker = int(env.HITLESS_WORKER);
  if (generation !== undefined) info.generation = generation;
  if (worker !== undefined) info.worker = worker;
  if (env.HITLESS_RELEASE) info.release = env.HITLESS_RELEASE;
  return info;
}
