/**
 * What a killed install leaves under releases/, and removing it. An install copies into a
 * `.staging-*` folder, renames it to `releases/<id>`, then runs `prepare` there (in the final
 * folder, so paths it bakes in stay valid). A run killed while copying leaves a staging
 * folder; one killed during prepare leaves a release whose record is still marked
 * `preparing` by a pid that is gone: an unprepared release that must never be switched to.
 * Whoever next takes the release lock removes both (lock.ts): under the lock no install runs.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseDir, releasesDir } from './layout.js';
import { readState, unfinished, updateState } from './state.js';

/**
 * Removes a release's folder and its record: a release that never went live (failed or
 * interrupted prepare). The record goes only once the folder is gone, so a folder that
 * could not be removed stays marked and is tried again by the next lock holder.
 *
 * @example
 * await discardRelease('/srv/app', 'v3');
 */
export async function discardRelease(appDir: string, id: string): Promise<void> {
  // Retries: a prepare orphaned by a killed run may still be writing into the folder.
  await rm(releaseDir(appDir, id), { recursive: true, force: true, maxRetries: 3 });
  await updateState(appDir, (s) => { delete s.releases[id]; });
}

/**
 * Removes leftovers of killed installs: staging folders and releases whose prepare did not
 * finish. Call it only holding the release lock.
 *
 * @example
 * await withReleaseLock(appDir, async () => { ... }); // calls it when it takes the lock
 */
export async function removeLeftovers(appDir: string): Promise<void> {
  const dir = releasesDir(appDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith('.staging-')).map((n) => rm(join(dir, n), { recursive: true, force: true })));
  // Only a dead pid's: installRelease itself takes no lock, so a live one may be preparing now.
  const interrupted = Object.values((await readState(appDir)).releases).filter((r) => unfinished(r) === 'interrupted').map((r) => r.id);
  for (const id of interrupted) await discardRelease(appDir, id).catch(() => {});
}
