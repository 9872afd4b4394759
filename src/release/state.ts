/**
 * What hitless remembers about releases, in `<app>/releases/.hitless-state.json`:
 * each release's content hash, creation time and last outcome, which release was
 * current before the last switch (the default rollback target), the fetcher's HTTP
 * validators, and artifacts that failed to go live (by sha256) so the fetcher does
 * not retry them until the artifact changes.
 *
 * Kept outside the release folders on purpose: writing into a release would change
 * its content hash. Writes are atomic (temp file + rename), so a reader never sees a
 * half-written file; two writers racing (the CLI and the master's fetcher) may lose
 * one update, which costs at most a stale outcome in `hitless releases`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { releasesDir } from './layout.js';
import { processAlive } from '../process-alive.js';

export const STATE_FILE = '.hitless-state.json';

export interface ReleaseOutcomeRecord {
  ok: boolean;
  at: number;
  /** What the outcome was: 'live', 'rolled-back', 'switched' (no master ran). */
  result: 'live' | 'rolled-back' | 'switched';
  code?: string;
  message?: string;
}

export interface ReleaseRecord {
  id: string;
  createdAt: number;
  /** Content hash of what was released (before `prepare` ran). */
  hash: string;
  /** Where it came from (a path, or the fetcher's URL). */
  source?: string;
  /** sha256 of the archive it was extracted from, when it came from one. */
  artifactSha256?: string;
  /**
   * Pid of the process running this release's `prepare`: set before the folder appears under
   * releases/, removed once prepare succeeds. Still there after that process is gone, it marks
   * a release whose prepare never finished (a killed `hitless release`): see leftovers.ts.
   */
  preparing?: number;
  outcome?: ReleaseOutcomeRecord;
}

export interface FetchState {
  /** The URL without its query string, and a hash of the whole URL (fetcher.ts). */
  url: string;
  etag?: string;
  lastModified?: string;
  /** sha256 of the last artifact installed or judged (skipped, failed). */
  sha256?: string;
}

export interface ReleaseState {
  version: 1;
  releases: Record<string, ReleaseRecord>;
  /** The release current pointed at before the last switch. */
  previous?: string;
  /** sha256 of artifacts that did not go live: the fetcher skips them. */
  failedArtifacts: string[];
  fetch?: FetchState;
}

/**
 * Why a release is not one to switch to yet: its prepare is still running, or was cut short
 * by a run that died (`interrupted`); undefined for a finished release.
 *
 * @example
 * if (unfinished(state.releases[id]) === undefined) candidates.push(id);
 */
export function unfinished(record: ReleaseRecord | undefined): 'preparing' | 'interrupted' | undefined {
  if (record?.preparing === undefined) return undefined;
  return processAlive(record.preparing) ? 'preparing' : 'interrupted';
}

function statePath(appDir: string): string {
  return join(releasesDir(appDir), STATE_FILE);
}

/**
 * Reads the state file; a missing or unreadable file is an empty state (the folders
 * themselves stay the truth: state only adds facts).
 *
 * @example
 * const state = await readState('/srv/app');
 * state.releases['v2']?.outcome?.ok;
 */
export async function readState(appDir: string): Promise<ReleaseState> {
  try {
    const parsed = JSON.parse(await readFile(statePath(appDir), 'utf8')) as Partial<ReleaseState>;
    return {
      version: 1,
      releases: typeof parsed.releases === 'object' && parsed.releases !== null ? parsed.releases : {},
      failedArtifacts: Array.isArray(parsed.failedArtifacts) ? parsed.failedArtifacts : [],
      ...(typeof parsed.previous === 'string' ? { previous: parsed.previous } : {}),
      ...(parsed.fetch && typeof parsed.fetch.url === 'string' ? { fetch: parsed.fetch } : {}),
    };
  } catch {
    return { version: 1, releases: {}, failedArtifacts: [] };
  }
}

/**
 * Read-modify-write of the state file, written atomically.
 *
 * @example
 * await updateState(appDir, (s) => { s.previous = 'v1'; });
 */
export async function updateState(appDir: string, change: (state: ReleaseState) => void): Promise<ReleaseState> {
  const state = await readState(appDir);
  change(state);
  await mkdir(releasesDir(appDir), { recursive: true });
  const tmp = `${statePath(appDir)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await rename(tmp, statePath(appDir));
  return state;
}
