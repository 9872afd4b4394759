/**
 * Warm-up (issue 23): after a new worker announced READY and before a reload switches to it,
 * the master sends it the configured requests (`warmup`, like ["/", "/api/health"]) over a
 * connection handed to it exactly like a handed-over keep-alive connection (a `conn` message
 * on the worker channel), so the code a request runs through (lazily loaded routes, lazily
 * compiled functions) is loaded and compiled before the first clients and the connections
 * handed over from the old generation reach it. A warm-up answered with a 5xx, or not answered
 * within `readyTimeout` of READY, fails the worker's readiness like a crash before READY does
 * (ERR_WARMUP_FAILED): the reload fails and the old generation keeps serving.
 *
 * The requests themselves are the master's (src/master/warmup.ts, real sockets); here is what
 * the reload decides: which workers can be warmed (those that said hello with hand-over: only
 * they serve a connection passed on the channel), which listener, and the outcome.
 */
import { HitlessError } from '../errors.js';
import type { ConnMessage } from '../lib/protocol.js';
import type { MasterEvent, WarmupResponse } from './types.js';

export type { WarmupResponse };

/** What a warm-up needs of a worker: who it is, whether it takes connections, how to pass one. */
export interface WarmupTarget {
  readonly generation: number;
  readonly slot: number;
  readonly pid: number | undefined;
  readonly hello: { handover: boolean; listeners: string[] } | undefined;
  readonly spec: {
    fdNames: string[]; warmup?: string[] | undefined; warmupRounds?: number | undefined; readyTimeout: number;
    /** Its booting and serving nice values, when it boots lower: the warm-up's client runs as low. */
    bootPriority?: { booting: number; serving: number } | undefined;
  };
  /** Its last output lines (for the failure report). */
  readonly output: string[];
  /** Passes a connection (`conn` + handle): true once the worker holds it. */
  deliver(message: ConnMessage, handle: unknown): Promise<boolean>;
}


/**
 * Sends `paths` to `target` on `listener`, `rounds` times, one request after the other, all
 * within `timeoutMs`; resolves with one response per path (its status, the first 5xx if
 * any, at which it stops; the median time; how many were sent), rejects when one could not
 * be sent or answered in time (the message says which and why).
 */
export type Warmer = (target: WarmupTarget, listener: string | undefined, paths: string[], rounds: number, timeoutMs: number) => Promise<WarmupResponse[]>;

/** The event a warm-up reports. */
export type WarmupEvent = Extract<MasterEvent, { type: 'worker-warmup' }>;

/**
 * Warms `w` up with its spec's `warmup` paths (none: nothing to do). Resolves when done or
 * skipped (reported through `emit`); rejects with ERR_WARMUP_FAILED on a 5xx, an error or the
 * deadline.
 *
 * @example
 * await warmUp(worker, createWarmer(...), (e) => supervisor.emit(e), host.now);
 */
export async function warmUp(w: WarmupTarget, warmer: Warmer | undefined, emit: (e: WarmupEvent) => void, now: () => number): Promise<void> {
  const paths = w.spec.warmup ?? [];
  if (paths.length === 0 || warmer === undefined) return;
  const base = { type: 'worker-warmup' as const, generation: w.generation, slot: w.slot, pid: w.pid };
  if (w.hello?.handover !== true) {
    emit({ ...base, responses: [], ms: 0, skipped: 'the worker takes no connection on the channel (no hello with hand-over: not the in-app library, or --no-preload)' });
    return;
  }
  // A connection of the first listener it serves; a worker that named none takes any.
  const listener = w.hello.listeners[0] ?? w.spec.fdNames[0];
  const started = now();
  let responses: WarmupResponse[];
  try {
    responses = await warmer(w, listener, paths, Math.max(1, w.spec.warmupRounds ?? 1), w.spec.readyTimeout);
  } catch (err) {
    throw new HitlessError('ERR_WARMUP_FAILED', `worker ${w.generation}.${w.slot} failed its warm-up: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err, details: { output: w.output },
    });
  }
  emit({ ...base, responses, ms: now() - started });
  const bad = responses.find((r) => r.status >= 500);
  if (bad !== undefined) {
    throw new HitlessError('ERR_WARMUP_FAILED',
      `worker ${w.generation}.${w.slot} answered its warm-up request GET ${bad.path} with ${bad.status}: the new version does not serve it; fix it, or remove the path from "warmup"`,
      { details: { output: w.output } });
  }
}
