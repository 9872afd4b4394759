/**
 * Small readers of Linux's /proc (and other text files that may be missing), shared by the
 * priority control, the usage sampler and the ops checks.
 */
import { readFileSync } from 'node:fs';

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
