/**
 * Keeps the newest `keep` releases that did not fail to go live, and removes older ones.
 * Failed (rolled-back) releases are no way back, so they do not count: only the newest
 * one is kept, to look into (releasing a failing build twice made two copies that pushed
 * good releases out). The current release and the previous one (the default rollback
 * target) are never removed, whatever `keep` says. A removed release's record in the
 * state file goes too.
 */
import { rm, stat } from 'node:fs/promises';
import { listReleaseIds, releaseDir } from './layout.js';
import { updateState, type ReleaseState } from './state.js';

/**
 * Removes old releases and all but the newest failed one, with their records; returns the removed ids.
 *
 * @example
 * await pruneReleases('/srv/app', 5, state, ['v9', 'v8']);
 */
export async function pruneReleases(appDir: string, keep: number, state: ReleaseState, protect: Array<string | undefined>): Promise<string[]> {
  const aged = (await releasesByAge(appDir, state)).reverse(); // newest first
  const failed = (id: string): boolean => state.releases[id]?.outcome?.result === 'rolled-back';
  const keepSet = new Set([
    ...aged.filter((r) => !failed(r.id)).slice(0, Math.max(0, keep)).map((r) => r.id),
    ...aged.filter((r) => failed(r.id)).slice(0, 1).map((r) => r.id),
  ]);
  for (const id of protect) if (id !== undefined) keepSet.add(id);
  const removed: string[] = [];
  for (const { id } of aged) {
    if (keepSet.has(id)) continue;
    await rm(releaseDir(appDir, id), { recursive: true, force: true });
    removed.push(id);
  }
  // Their records go with them: the state file grew by one record per failed release.
  if (removed.length > 0) await updateState(appDir, (s) => { for (const id of removed) delete s.releases[id]; });
  return removed;
}

/** Releases ordered oldest first (by recorded creation time, else folder mtime). */
export async function releasesByAge(appDir: string, state: ReleaseState): Promise<Array<{ id: string; at: number }>> {
  const ids = await listReleaseIds(appDir);
  const aged = await Promise.all(ids.map(async (id) => ({ id, at: state.releases[id]?.createdAt ?? (await stat(releaseDir(appDir, id))).mtimeMs })));
  return aged.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
}
