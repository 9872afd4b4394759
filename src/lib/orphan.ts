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
import { readFileSync } from 'node:fs';
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

/** Whether a process exists (signal 0 sends nothing; EPERM: it exists, another user's). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `pid` is gone or exiting: its leader thread is a zombie (state Z or X in
 * /proc/<pid>/stat) while its other threads exit, or it was reaped. Where /proc cannot be
 * read (not Linux), only a process that is gone counts.
 */
function dead(pid: number): boolean {
  if (pid <= 1) return false;
  if (!exists(pid)) return true;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return !exists(pid);
  }
  // The command name (field 2) may hold spaces and parentheses: the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}
