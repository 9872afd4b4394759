/**
 * The pid file (`pidFile`, `--pid-file`): written atomically by the master that serves (a
 * rename over it: a reader sees the old pid or the new one, never a torn file), and
 * removed by that master at its final stop. After an upgrade the new master rewrites it
 * and owns it; the old one leaves it alone.
 */
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';

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

/**
 * Removes the pid file, if any.
 *
 * @example
 * removePidFile(config.pidFile);
 */
export function removePidFile(path: string | undefined): void {
  if (!path) return;
  try {
    unlinkSync(path);
  } catch {
    // already removed
  }
}
