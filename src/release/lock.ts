/**
 * One release operation at a time per app folder. `hitless release`, `hitless rollback`
 * and the fetcher inside the master all switch `current` and write the state file; two of
 * them interleaved could switch back the other's release or lose a state update. The lock
 * is a file created with O_EXCL holding the owner's pid: a lock whose owner is gone (a
 * killed deploy) is stale and taken over. Re-entrant within a process, so `deployRelease`
 * may call `goLive` under the same lock.
 */
import { readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HitlessError } from '../errors.js';
import { releasesDir } from './layout.js';
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
 * Runs `fn` holding the app folder's release lock. A lock found stale also means any
 * half-made staging folder beside it belongs to a dead deploy: those are removed.
 *
 * @example
 * await withReleaseLock('/srv/app', () => goLive('v2', opts));
 */
export async function withReleaseLock<T>(appDir: string, fn: () => Promise<T>): Promise<T> {
  const dir = releasesDir(appDir);
  const count = held.get(dir) ?? 0;
  if (count === 0) {
    await acquire(join(dir, LOCK_FILE));
    await removeStaging(dir);
  }
  held.set(dir, count + 1);
  try {
    return await fn();
  } finally {
    const left = (held.get(dir) ?? 1) - 1;
    if (left === 0) {
      held.delete(dir);
      await unlink(join(dir, LOCK_FILE)).catch(() => {});
    } else held.set(dir, left);
  }
}

/** Under the lock no install runs, so every staging folder is left over from a killed one. */
async function removeStaging(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith('.staging-')).map((n) => rm(join(dir, n), { recursive: true, force: true })));
}
