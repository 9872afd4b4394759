/**
 * Installing a release: copy a folder or safely extract an archive into
 * `releases/<id>`, skip it when its content equals the current release, run the
 * optional `prepare` command in it. Switching to it is deploy.ts's job.
 *
 * The content lands in a hidden staging folder first and is renamed into place only
 * once complete, so a half-copied release never appears under releases/. `prepare`
 * runs in the final folder (not the staging one) so paths it bakes in stay valid; until it
 * succeeds the release is marked `preparing` in the state file (leftovers.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { abortReason, HitlessError, isHitlessError } from '../errors.js';
import { safeExtract } from './extract.js';
import { hashTree } from './hash.js';
import { discardRelease } from './leftovers.js';
import { makeReleaseId, readCurrent, releaseDir, releasesDir, validateReleaseId } from './layout.js';
import { runPrepare, type OutputSink } from './prepare.js';
import { readState, updateState } from './state.js';

export interface InstallOptions {
  appDir: string;
  /** Release id (default: UTC time + short content hash). */
  id?: string;
  /** Command run in the new release before it is switched to (default: none). */
  prepare?: string[] | undefined;
  /** Where prepare's output goes as it comes (default: dropped). */
  onOutput?: OutputSink;
  /**
   * Stops the install before the switch (default: none): prepare gets SIGTERM, the release is
   * removed and ERR_RELEASE_INTERRUPTED thrown. `hitless release` aborts it on SIGINT/SIGTERM.
   */
  signal?: AbortSignal;
  /** 'archive' forces archive handling for a file without a .tgz name (the fetcher's download). */
  kind?: 'auto' | 'archive';
  /** Recorded as the release's source (default: the source path). */
  label?: string;
  /** sha256 of the archive, recorded so the fetcher can recognise it. */
  artifactSha256?: string;
  now?: () => number;
}

export type InstallResult =
  | { skipped: true; id: string; hash: string }
  | { skipped: false; id: string; hash: string; bytes: number };

const ARCHIVE_NAME = /\.(tgz|tar\.gz|tar)$/i;

/** Copies or extracts `source` into `dest`; true when it was an archive. */
async function stage(source: string, dest: string, opts: InstallOptions): Promise<boolean> {
  let st;
  try {
    st = await stat(source);
  } catch {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
      throw new HitlessError('ERR_RELEASE_SOURCE', `release source ${source} is a URL: hitless release takes a folder or an archive on this machine; ` +
        'download it first (curl -fLo app.tgz <url>), or let the master fetch it ("fetch" in hitless.json, docs/RELEASES.md)');
    }
    throw new HitlessError('ERR_RELEASE_SOURCE', `release source ${source} does not exist`);
  }
  if (st.isDirectory()) {
    const src = await realpath(source);
    const rel = relative(src, await realpath(releasesDir(opts.appDir)));
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
      throw new HitlessError('ERR_RELEASE_SOURCE', `release source ${source} contains the releases folder; release a build folder, not the app folder`);
    }
    // verbatimSymlinks: keep relative links relative (node_modules/.bin), never rewrite them to the source.
    await cp(src, dest, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
    return false;
  }
  if (st.isFile() && (opts.kind === 'archive' || ARCHIVE_NAME.test(source))) {
    await safeExtract(source, dest, opts.label ?? source);
    return true;
  }
  throw new HitlessError('ERR_RELEASE_SOURCE', `release source ${source} is neither a folder nor a .tgz/.tar.gz/.tar archive`);
}

/**
 * Installs `source` (a folder or an archive) as a new release. Resolves `{ skipped: true }`
 * with the current id when its content equals the current release.
 *
 * @example
 * const r = await installRelease('/tmp/app.tgz', { appDir: '/srv/app', prepare: ['npm', 'ci'] });
 * if (!r.skipped) await goLive(r.id, { ... });
 */
export async function installRelease(source: string, opts: InstallOptions): Promise<InstallResult> {
  const now = opts.now ?? Date.now;
  if (opts.id !== undefined) validateReleaseId(opts.id);
  await mkdir(releasesDir(opts.appDir), { recursive: true });
  const staging = join(releasesDir(opts.appDir), `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const archive = await stage(source, staging, opts);
    const { hash, bytes } = await hashTree(staging);
    const currentId = await readCurrent(opts.appDir);
    if (currentId !== undefined && (await currentHash(opts.appDir, currentId, opts.prepare)) === hash) {
      return { skipped: true, id: currentId, hash };
    }
    const id = opts.id ?? makeReleaseId(hash, now());
    await replaceRetriedRelease(opts.appDir, id, hash, currentId);
    // Recorded so a deploy can tell, before changing anything, whether a release of this id
    // came from the same archive (src/fleet/preflight.ts).
    const artifactSha256 = opts.artifactSha256 ?? (archive ? await fileSha256(source) : undefined);
    const prepare = opts.prepare !== undefined && opts.prepare.length > 0 ? opts.prepare : undefined;
    // Recorded before the folder appears: a run killed from here until prepare succeeds leaves
    // a release marked `preparing` that rollback skips and the next lock holder removes.
    await updateState(opts.appDir, (s) => {
      s.releases[id] = {
        id, createdAt: now(), hash, source: opts.label ?? source,
        ...(artifactSha256 ? { artifactSha256 } : {}),
        ...(prepare ? { preparing: process.pid } : {}),
      };
    });
    await rename(staging, releaseDir(opts.appDir, id));
    await finishRelease(opts, id, prepare, currentId);
    return { skipped: false, id, hash, bytes };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Makes way for a retry under the same id: a release `id` that exists but is not current
 * (it failed to go live, or a deploy rolled it back) and holds the same content is removed,
 * so the retry installs it afresh, prepare included. A deploy script naming releases after
 * commits (`--id "$(git rev-parse --short HEAD)"`, docs/deploy.md) can thus run again after
 * a failure. Other content under that id, or the current release, is refused.
 *
 * @throws HitlessError ERR_USAGE when `id` exists with other content (or is current).
 */
async function replaceRetriedRelease(appDir: string, id: string, hash: string, currentId: string | undefined): Promise<void> {
  try {
    await stat(releaseDir(appDir, id));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (id !== currentId && (await readState(appDir)).releases[id]?.hash === hash) {
    await discardRelease(appDir, id);
    return;
  }
  throw new HitlessError('ERR_USAGE', `release ${id} already exists${id === currentId ? ' as the current release' : ''} with other content; give another --id`);
}

/**
 * Runs prepare in the installed release and clears its mark. A failed prepare, or a stop
 * asked through `opts.signal` before the switch, discards the release.
 */
async function finishRelease(opts: InstallOptions, id: string, prepare: string[] | undefined, currentId: string | undefined): Promise<void> {
  let prepared = prepare === undefined;
  try {
    if (prepare) {
      await runPrepare(prepare, releaseDir(opts.appDir, id), { HITLESS_RELEASE: id }, opts.onOutput, opts.signal);
      prepared = true;
      await updateState(opts.appDir, (s) => {
        const r = s.releases[id];
        if (r) delete r.preparing;
      });
    }
    opts.signal?.throwIfAborted();
  } catch (err) {
    await discardRelease(opts.appDir, id);
    // Checked after the removal: a Ctrl-C reaches the prepare command too, which may die of it
    // (ERR_RELEASE_PREPARE) before hitless has handled its own signal.
    if (!opts.signal?.aborted) {
      if (!isHitlessError(err, 'ERR_RELEASE_PREPARE')) throw err;
      // runPrepare names only the command: say which release, that it is gone and what serves.
      throw new HitlessError('ERR_RELEASE_PREPARE', `release ${id}: ${err.message}; removed it, current is still ${currentId ?? 'none'}`,
        { cause: err, details: { ...err.details, id, current: currentId } });
    }
    const why = abortReason(opts.signal);
    throw new HitlessError('ERR_RELEASE_INTERRUPTED',
      `release ${id} interrupted ${prepared ? 'before the switch' : 'during prepare'} (${why}); removed it, current is still ${currentId ?? 'none'}`,
      { cause: err, details: { id, current: currentId } });
  }
}

/** The current release's content hash: recorded at install, else computed (only meaningful without prepare). */
async function currentHash(appDir: string, id: string, prepare: string[] | undefined): Promise<string | undefined> {
  const recorded = (await readState(appDir)).releases[id]?.hash;
  if (recorded !== undefined) return recorded;
  if (prepare !== undefined && prepare.length > 0) return undefined;
  try {
    return (await hashTree(releaseDir(appDir, id))).hash;
  } catch {
    return undefined;
  }
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
