/**
 * Where releases live in an app folder, Capistrano-style:
 *
 * ```
 * <app>/releases/<id>/             one folder per release
 * <app>/releases/.hitless-state.json   what hitless remembers (see state.ts)
 * <app>/current -> releases/<id>   relative link, swapped atomically (see switch.ts)
 * ```
 *
 * The link target is relative so the app folder can be moved or mounted elsewhere
 * without breaking `current`.
 */
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { HitlessError } from '../errors.js';

export const RELEASES_DIR = 'releases';
export const CURRENT_LINK = 'current';

/** `<app>/releases`. */
export function releasesDir(appDir: string): string {
  return join(appDir, RELEASES_DIR);
}

/** `<app>/current`. */
export function currentLink(appDir: string): string {
  return join(appDir, CURRENT_LINK);
}

/** `<app>/releases/<id>`. */
export function releaseDir(appDir: string, id: string): string {
  return join(appDir, RELEASES_DIR, id);
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks a release id given by a user (`--id`, `hitless rollback <id>`): a single path
 * segment of letters, digits, `.`, `_`, `-`, not starting with a dot (dot names are hitless's own).
 *
 * @example
 * validateReleaseId('v1.2.3'); // ok
 * validateReleaseId('../etc'); // throws ERR_USAGE
 */
export function validateReleaseId(id: string): string {
  if (!ID_PATTERN.test(id)) {
    throw new HitlessError('ERR_USAGE', `bad release id ${JSON.stringify(id)}: use letters, digits, '.', '_' and '-' (not starting with '.')`);
  }
  return id;
}

/**
 * The default id: UTC time plus a short content hash, so ids sort by time.
 *
 * @example
 * makeReleaseId('3f9a1c2e…', Date.UTC(2026, 10, 21, 10, 15)); // '20261121T101500Z-3f9a1c2'
 */
export function makeReleaseId(hash: string, now: number = Date.now()): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${hash.slice(0, 7)}`;
}

/**
 * The release `current` points at, or undefined when there is no `current` link.
 * Throws ERR_RELEASE_NOT_FOUND when `current` exists but is not a `releases/<id>` link
 * (a real folder, or a link made by something else).
 *
 * @example
 * const id = await readCurrent('/srv/app'); // '20261121T101500Z-3f9a1c2'
 */
export async function readCurrent(appDir: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await readlink(currentLink(appDir));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL') {
      throw new HitlessError('ERR_RELEASE_NOT_FOUND', `${currentLink(appDir)} is not a symlink; move it away so hitless can manage releases`);
    }
    throw err;
  }
  const parts = target.split('/').filter((p) => p !== '' && p !== '.');
  const id = parts[1];
  if (parts.length !== 2 || parts[0] !== RELEASES_DIR || id === undefined || !ID_PATTERN.test(id)) {
    throw new HitlessError('ERR_RELEASE_NOT_FOUND', `${currentLink(appDir)} points at ${target}, not at ${RELEASES_DIR}/<id>`);
  }
  return id;
}

/** Release ids present under releases/ (folders only, hitless's dot-files excluded), unsorted. */
export async function listReleaseIds(appDir: string): Promise<string[]> {
  try {
    const entries = await readdir(releasesDir(appDir), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && ID_PATTERN.test(e.name)).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
