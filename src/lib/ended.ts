/**
 * Whether a process that is not our child has ended, for the library (lib/orphan.ts) and the
 * master (process-alive.ts re-exports it; the library imports nothing outside lib/).
 */
import { readFileSync } from 'node:fs';

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
 * /proc/<pid>/stat) while its other threads exit or until its parent reaps it (a process
 * just killed is one for a while, longer where its parent does not reap), or it was
 * reaped. Where /proc cannot be read (not Linux), only a process that is gone counts.
 *
 * @example
 * if (processEnded(oldMasterPid)) … // it died, even if nobody reaped it yet
 */
export function processEnded(pid: number): boolean {
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
