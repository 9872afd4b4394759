/**
 * Keeps the newest `keep` releases and removes older ones. The current release and
 * the previous one (the default rollback target) are never removed, whatever `keep` says.
 */
import { rm, stat } from 'node:fs/promises';
import { listReleaseIds, releaseDir } from './layout.js';
import type { ReleaseState } from './state.js';

/**
 * Removes old releases; returns the removed ids.
 *
 * @example
 * await pruneReleases('/srv/app', 5, state, ['v9', 'v8']);
 */
export async function pruneReleases(appDir: string, keep: number, state: ReleaseState, protect: Array<string | undefined>): Promise<string[]> {
  const aged = (await releasesByAge(appDir, state)).reverse(); // newest first
  const keepSet = new Set(aged.slice(0, Math.max(0, keep)).map((r) => r.id));
  for (const id of protect) if (id !== undefined) keepSet.add(id);
  const removed: string[] = [];
  for (const { id } of aged) {
    if (keepSet.has(id)) continue;
    await rm(releaseDir(appDir, id), { recursive: true, force: true });
    removed.push(id);
  }
  return removed;
}

/** Releases ordered oldest first (by recorded creation time, else folder mtime). */
export async function releasesByAge(appDir: string, state: ReleaseState): Promise<Array<{ id: string; at: number }>> {
  const ids = await listReleaseIds(appDir);
  const aged = await Promise.all(ids.map(async (id) => ({ id, at: state.releases[id]?.createdAt ?? (await stat(releaseDir(appDir, id))).mtimeMs })));
  return aged.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
}
