/**
 * Small readers of Linux's /proc (and other text files that may be missing), shared by the
 * priority control, the usage sampler and the ops checks.
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * The text of `path`, or '' when it cannot be read (missing, not Linux, no permission).
 *
 * @example
 * readOr('/proc/sys/kernel/sched_autogroup_enabled'); // '1\n', or ''
 */
export function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The arguments `pid` was started with (/proc/<pid>/cmdline, readable by every user), or
 * undefined when it cannot be read (gone, hidden from this user, not Linux).
 *
 * @example
 * commandLine(4208); // ['node', '/srv/app/node_modules/.bin/hitless', 'start', '--run-dir', '/run/app']
 */
export function commandLine(pid: number): string[] | undefined {
  try {
    // Each argument ends with a NUL: no empty one after the last.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/**
 * The fields of a /proc/<pid>/stat text from field 3 (state) on, or undefined when it has
 * none: the command name (field 2) may hold spaces and parentheses, so fields are counted
 * from the last ')'. Field n of proc(5) is at index n - 3.
 *
 * @example
 * statFields('42 (my (app)) S 1 42 42 …')?.[3]; // '42': field 6, the session
 */
export function statFields(text: string): string[] | undefined {
  const close = text.lastIndexOf(')');
  return close < 0 ? undefined : text.slice(close + 2).split(' ');
}

/** The session `pid` belongs to (field 6 of /proc/<pid>/stat), or undefined when it is gone. */
export function sessionOf(pid: number): number | undefined {
  const session = statFields(readOr(`/proc/${pid}/stat`))?.[3];
  return session === undefined ? undefined : Number(session);
}

/** Thread ids of `pid` (just `pid` where /proc has no task list). */
export function threadIds(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((t) => t > 0);
  } catch {
    return [pid];
  }
}

/** Child process ids of every thread of `pid` (/proc/<pid>/task/<tid>/children; none when gone). */
export function childPids(pid: number): number[] {
  return threadIds(pid).flatMap((tid) => readOr(`/proc/${pid}/task/${tid}/children`).trim().split(/\s+/).filter(Boolean).map(Number));
}
