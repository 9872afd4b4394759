/**
 * Whether a process exists, for processes that are not our children (no exit event
 * reaches us for those): signal 0 checks without sending anything. EPERM means it exists
 * but belongs to another user.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is gone or a zombie (lib/ended.ts): a process just killed, not reaped yet. */
export { processEnded } from './lib/ended.js';

/** How often {@link waitForExit} looks. */
const EXIT_POLL_MS = 50;

/**
 * Resolves true once `pid` is gone (or `gone(pid)` says so: processEnded counts a zombie
 * too), false when `timeoutMs` passed first (undefined: no limit). There is no exit event
 * for a process that is not our child, so this polls.
 *
 * @example
 * if (!(await waitForExit(masterPid, 30_000))) throw new Error('the master is still running');
 */
export async function waitForExit(pid: number, timeoutMs: number | undefined, gone: (pid: number) => boolean = (p) => !processAlive(p)): Promise<boolean> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  while (!gone(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, EXIT_POLL_MS));
  }
  return true;
}
