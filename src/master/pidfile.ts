/**
 * The pid file (`pidFile`, `--pid-file`): written atomically by the master that serves (a
 * rename over it: a reader sees the old pid or the new one, never a torn file), and
 * removed by that master at its final stop. After an upgrade the new master rewrites it
 * and owns it; the old one leaves it alone.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { HitlessError } from '../errors.js';
import { processAlive } from '../process-alive.js';
import { commandLine } from '../core/procfs.js';

/**
 * Writes this process's pid to `path` (nothing without a path).
 *
 * @example
 * writePidFile('/run/myapp/master.pid');
 */
export function writePidFile(path: string | undefined, pid = process.pid): void {
  if (!path) return;
  const tmp = `${path}.${pid}.tmp`;
  writeFileSync(tmp, `${pid}\n`);
  renameSync(tmp, path);
}

/** The pid the file holds, if it holds one. */
function readPid(path: string): number | undefined {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return /^\d+\n?$/.test(text) ? Number(text.trim()) : undefined;
}

/**
 * True when `pid` runs a hitless command, as far as /proc tells: its command line names
 * the `hitless` command or the CLI's script (`…/cli/main.js`, a clone's build).
 */
function runsHitless(pid: number): boolean {
  const args = commandLine(pid);
  // Another user's process without /proc access, or no /proc: assume it may be a master.
  if (args === undefined) return processAlive(pid);
  return args.some((arg) => /hitless|[/\\]cli[/\\]main\.js$/.test(arg));
}

/**
 * Refuses a pid file that names another running master (a second master of the same app,
 * started with its own run dir, would take the file over and remove it at its stop while
 * the first one still runs). A file left by a master that died, or naming a pid reused
 * since by another program, is not in the way: it is overwritten.
 *
 * @throws HitlessError ERR_MASTER_RUNNING naming the file and the pid.
 * @example
 * refuseTakenPidFile(config.pidFile);
 */
export function refuseTakenPidFile(path: string | undefined): void {
  if (!path) return;
  const pid = readPid(path);
  if (pid === undefined || pid === process.pid || !processAlive(pid) || !runsHitless(pid)) return;
  throw new HitlessError('ERR_MASTER_RUNNING',
    `pidFile (--pid-file): ${path} belongs to the running master pid ${pid}; stop that master, or give this one another --pid-file`,
    { details: { path, pid } });
}

/**
 * Removes the pid file, if any, when it still names this process (`pid`): after an upgrade
 * it names the new master, and a file another master wrote is not this one's to remove.
 *
 * @example
 * removePidFile(config.pidFile);
 */
export function removePidFile(path: string | undefined, pid = process.pid): void {
  if (!path || readPid(path) !== pid) return;
  try {
    unlinkSync(path);
  } catch {
    // already removed
  }
}
