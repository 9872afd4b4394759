/**
 * Nice values as /proc shows them, for the boot-priority tests and the fixture app that
 * reports the warm-up client (both read the same two files the same way).
 */
import { readOr, statFields, threadIds } from '../../src/core/procfs.js';

/** The nice value of every thread of `pid` (field 19 of /proc/<pid>/task/<tid>/stat). */
export function threadNices(pid: number): number[] {
  return threadIds(pid).map((tid) => Number(statFields(readOr(`/proc/${pid}/task/${tid}/stat`))?.[16]));
}

/** The nice value of the autogroup (session group) `pid` is in ("/autogroup-N nice X"); NaN without one. */
export function groupNice(pid: number | 'self'): number {
  return Number(/nice\s+(-?\d+)/.exec(readOr(`/proc/${pid}/autogroup`))?.[1]);
}
