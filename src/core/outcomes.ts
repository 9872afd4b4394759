/**
 * The reports of reloads and scales that did not happen or failed: built here once, so a
 * refusal reads the same whoever refuses (the supervisor, or the reconfigure layer before
 * the supervisor saw the request).
 */
import { configProblems, HitlessError, isHitlessError } from '../errors.js';
import type { ReloadOutcome, ScaleOutcome } from './types.js';

type OutcomeError = NonNullable<ReloadOutcome['error']>;

/**
 * Code, message and the failed workers' last output lines of any error (ERR_RELOAD_FAILED
 * for one that is not a HitlessError).
 *
 * @example
 * outcomeError(new HitlessError('ERR_READY_TIMEOUT', 'worker 2.0 did not …')); // { code: 'ERR_READY_TIMEOUT', message: 'worker 2.0 did not …', output: [] }
 */
export function outcomeError(err: unknown): OutcomeError {
  const e = isHitlessError(err) ? err : new HitlessError('ERR_RELOAD_FAILED', String(err), { cause: err });
  const output = Array.isArray(e.details.output) ? (e.details.output as string[]) : [];
  const problems = configProblems(e);
  return { code: e.code, message: e.message, output, ...(problems ? { problems } : {}) };
}

/** What a failed or refused reload reports. */
export interface FailedReload {
  reason: string;
  startedAt: number;
  /** The clock now (the host's). */
  now: number;
  /** The generation serving (0: none). */
  serving: number;
  /** The generation that was tried (the serving one when none was created). */
  attempted: number;
  error: unknown;
}

/**
 * A reload that did not go live: `serving` keeps serving.
 *
 * @example
 * failedReload({ reason: 'SIGHUP', startedAt, now: host.now(), serving: 3, attempted: 4, error: err });
 */
export function failedReload(f: FailedReload): ReloadOutcome {
  return {
    ok: false, generation: f.serving, attempted: f.attempted, reason: f.reason, startedAt: f.startedAt,
    durationMs: f.now - f.startedAt, forced: 0, error: outcomeError(f.error),
  };
}

/** The reload refused because the master is stopping (ERR_STOPPING). */
export function stoppingReload(reason: string, serving: number, now: number): ReloadOutcome {
  return failedReload({
    reason, startedAt: now, now, serving, attempted: serving,
    error: new HitlessError('ERR_STOPPING', 'the master is stopping'),
  });
}

/** What a scale that did not change the count reports: `generation` keeps its `workers`. */
export function refusedScale(generation: number, workers: number, startedAt: number, now: number, error: unknown): ScaleOutcome {
  return { ok: false, generation, from: workers, to: workers, startedAt, durationMs: now - startedAt, forced: 0, error: outcomeError(error) };
}

/**
 * The scale refused while a reload, another scale or a crash replacement's rebalance is in progress (ERR_SCALE_BUSY).
 *
 * @example
 * if (reloading) return busyScale(gen.id, gen.size, host.now());
 */
export function busyScale(generation: number, workers: number, now: number): ScaleOutcome {
  return refusedScale(generation, workers, now, now,
    new HitlessError('ERR_SCALE_BUSY', 'a reload, another scale or a restarted worker\'s rebalance is in progress; run `hitless scale` again once it is done'));
}

/**
 * True for a reload refused before a generation started (invalid configuration, a listen
 * address in use, an upgrade under way, …): nothing of the new version ran.
 */
export function wasRefused(o: ReloadOutcome): boolean {
  // A rollback that failed leaves the attempted generation serving: it ran, nothing was refused.
  return !o.ok && o.attempted === o.generation && o.rollback === undefined;
}
