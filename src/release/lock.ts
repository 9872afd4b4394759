/**
 * One release operation at a time per app folder. `hitless release`, `hitless rollback`
 * and the fetcher inside the master all switch `current` and write the state file; two of
 * them interleaved could switch back the other's release or lose a state update. The lock
 * is a file created with O_EXCL holding the owner's pid: a lock whose owner is gone (a
 * killed deploy) is stale and taken over, and what that deploy left half-made is removed
 * (leftovers.ts). Re-entrant within a process, so `deployRelease`
 * may call `goLive` under the same lock.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HitlessError } from '../errors.js';
import { releasesDir } from './layout.js';
import { removeLeftovers } from './leftovers.js';
import { processAlive } from '../process-alive.js';

export const LOCK_FILE = '.hitless-lock';

const held = new Map<string, number>();

async function acquire(path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
      throw new HitlessError(
        'ERR_RELEASE_BUSY',
        `another release operation (pid ${owner}) is in progress in ${join(path, '..', '..')}; wait for it to finish and try again`,
        { details: { pid: owner } },
      );
    }
    await unlink(path).catch(() => {}); // stale: its owner is gone
  }
  throw new HitlessError('ERR_RELEASE_BUSY', `cannot take the release lock ${path}; remove it if no release is running`);
}

/**
 * Runs `fn` holding the app folder's release lock. Taking it, removes what killed deploys
 * left half-made: staging folders, and releases whose prepare did not finish.
 *
 * @example
 * await withReleaseLock('/srv/app', () => goLive('v2', opts));
 */
export async function withReleaseLock<T>(appDir: string, fn: () => Promise<T>): Promise<T> {
  const dir = releasesDir(appDir);
  const count = held.get(dir) ?? 0;
  if (count === 0) await acquire(join(dir, LOCK_FILE));
  held.set(dir, count + 1);
  try {
    if (count === 0) await removeLeftovers(appDir);
    return await fn();
  } finally {
    const left = (held.get(dir) ?? 1) - 1;
    if (left === 0) {
      held.delete(dir);
      await unlink(join(dir, LOCK_FILE)).catch(() => {});
    } else held.set(dir, left);
  }
}
