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
