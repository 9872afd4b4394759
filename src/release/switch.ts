/**
 * Switching `current` atomically: a new symlink is written beside it, then renamed
 * over it (rename(2) replaces the link in one step, so a reader sees the old link or
 * the new one, never none). The target is relative (`releases/<id>`).
 *
 * Only a new generation notices a switch: the supervisor pins each generation's
 * working directory to realpath(current) at spawn (Unicorn/Capistrano's trap was the
 * opposite: resolving `current` once and running stale code forever).
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { HitlessError } from '../errors.js';
import { CURRENT_LINK, RELEASES_DIR, currentLink, readCurrent, releaseDir } from './layout.js';

/**
 * Points `current` at `releases/<id>` (or removes it when `id` is undefined: the
 * state before the first release). Returns the release it pointed at before.
 *
 * @example
 * const before = await switchCurrent('/srv/app', '20261121T101500Z-3f9a1c2');
 */
export async function switchCurrent(appDir: string, id: string | undefined): Promise<string | undefined> {
  const before = await readCurrent(appDir);
  if (id === undefined) {
    await rm(currentLink(appDir), { force: true });
    return before;
  }
  try {
    if (!(await stat(releaseDir(appDir, id))).isDirectory()) throw new Error('not a folder');
  } catch {
    throw new HitlessError('ERR_RELEASE_NOT_FOUND', `release ${id} does not exist in ${join(appDir, RELEASES_DIR)}`);
  }
  const tmp = join(appDir, `.${CURRENT_LINK}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await symlink(`${RELEASES_DIR}/${id}`, tmp);
  try {
    await rename(tmp, currentLink(appDir));
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  return before;
}
