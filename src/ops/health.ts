/**
 * The master's own health, for load balancers and monitors (`GET /healthz` on the metrics
 * listener): 200 while a generation serves, 503 while none does (starting, every worker
 * of the serving generation crashed or restarting, stopping). The app's own readiness
 * (the in-app library's `healthHandlers()`) says whether one worker serves; this says
 * whether the host does.
 */
import type { StatusSnapshot } from '../core/types.js';
import { runs } from '../core/worker-state.js';

/** The health report: HTTP status and a small JSON body. */
export interface MasterHealth {
  status: 200 | 503;
  /** `failed`: slots of the serving generation given up after a crash loop, only when there are some. */
  body: { ok: boolean; state: StatusSnapshot['state']; generation: number; ready: number; workers: number; failed?: number; reason?: string };
}

/**
 * Health from a status snapshot: a generation serves when the master runs (or reloads)
 * and at least one worker of the serving generation is ready.
 *
 * @example
 * const h = masterHealth(master.status());
 * res.writeHead(h.status, { 'content-type': 'application/json' }).end(JSON.stringify(h.body));
 */
export function masterHealth(s: StatusSnapshot): MasterHealth {
  const mine = s.workers.filter((w) => w.generation === s.generation && runs(w));
  const ready = mine.filter((w) => w.state === 'ready').length;
  // Given-up slots run no process (not in `workers`), yet the host serves with fewer than it should.
  const failed = s.workers.filter((w) => w.generation === s.generation && w.state === 'failed').length;
  const base = { state: s.state, generation: s.generation, ready, workers: mine.length, ...(failed > 0 ? { failed } : {}) };
  let reason: string | undefined;
  if (s.state !== 'running' && s.state !== 'reloading') reason = `the master is ${s.state}`;
  else if (s.generation === 0) reason = 'no generation started yet';
  else if (ready === 0) reason = `no worker of generation ${s.generation} is ready`;
  return reason === undefined ? { status: 200, body: { ok: true, ...base } } : { status: 503, body: { ok: false, ...base, reason } };
}
