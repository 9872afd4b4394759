/**
 * Whether the master (or, standalone, the parent) that started this process is gone, for
 * the stop-signal handlers: a repeated stop signal then is the parent-death signal again,
 * not the operator's second signal.
 *
 * The master starts each worker with a parent-death signal (`setpriv --pdeathsig`, the
 * master's stop signal). Linux sends it each time the worker is re-parented: when the thread
 * of the master that started it exits, again when the next thread it was handed to exits,
 * and so on up to init or a subreaper. A Node master has several threads, so a kill -9 of
 * it reaches the worker as two (or more) stop signals a few milliseconds apart. By the time
 * a repeated one is handled, the master's leader thread is a zombie or gone, or this
 * process has another parent already.
 */
import { processEnded } from './ended.js';
import { lifelineClosed } from './ready.js';

/** The parent at startup (process.ppid is read anew at each use). */
const firstParent = process.ppid;

/**
 * True once the master (env HITLESS_MASTER_PID) or the first parent of this process died
 * or is dying, this process was re-parented, or the master's lifeline closed (internal).
 * The master is checked by its pid because the app may run under a wrapper (a shell, a
 * signal-forwarding init) that the master started, which forwards the signal it got.
 *
 * @example
 * if (stopping && orphaned()) return; // the parent-death signal again: the same stop
 */
export function orphaned(): boolean {
  if (lifelineClosed() || process.ppid !== firstParent) return true;
  const raw = process.env.HITLESS_MASTER_PID;
  const master = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined;
  return dead(firstParent) || (master !== undefined && master !== firstParent && dead(master));
}

/** Whether `pid` (not init) is gone or exiting (lib/ended.ts). */
function dead(pid: number): boolean {
  return pid > 1 && processEnded(pid);
}
