/**
 * Going live: switch `current`, ask the master to reload, and switch back when the new
 * release does not go live. Used by `hitless release`, `hitless rollback` and the
 * fetcher, so all three behave the same.
 */
import { DEFAULT_RELEASE_KEEP } from '../config/defaults.js';
import { mkdir, rm } from 'node:fs/promises';
import { HitlessError, isHitlessError } from '../errors.js';
import { releaseDir, releasesDir } from './layout.js';
import type { ReloadOutcome } from '../core/types.js';
import { wasRefused } from '../core/outcomes.js';
import { installRelease, type InstallOptions } from './install.js';
import { withReleaseLock } from './lock.js';
import { pruneReleases } from './prune.js';
import { readState, updateState, type ReleaseOutcomeRecord } from './state.js';
import { switchCurrent } from './switch.js';

/** Default number of releases kept (config `release.keep`). */

/** Asks the master to reload; throws HitlessError ERR_NO_MASTER when none runs. */
export type ReloadFn = (reason: string) => Promise<ReloadOutcome>;

export interface GoLiveOptions {
  appDir: string;
  reload: ReloadFn;
  /** Reason given to the master (shown in its log and status). */
  reason: string;
  /** What the failure messages call this switch (default `release <id>`; `hitless rollback` says `rollback to <id>`). */
  subject?: string;
  /** Releases kept after a successful switch (default {@link DEFAULT_RELEASE_KEEP}). */
  keep?: number;
  now?: () => number;
}

export type GoLiveResult =
  | { status: 'live'; id: string; previous: string | undefined; outcome: ReloadOutcome; pruned: string[] }
  | { status: 'no-master'; id: string; previous: string | undefined; pruned: string[] };

export type DeployResult = GoLiveResult | { status: 'skipped'; id: string; hash: string };

async function record(appDir: string, id: string, outcome: ReleaseOutcomeRecord): Promise<void> {
  await updateState(appDir, (s) => {
    const r = s.releases[id];
    if (r) r.outcome = outcome;
  });
}

/**
 * Switches `current` to release `id` and reloads the master. When the reload does not
 * go live, `current` is switched back and ERR_RELEASE_ROLLED_BACK is thrown with the
 * master's reason and the failed workers' output in `details`. With no master running,
 * the switch stays and the result says so (the next `hitless start` runs it).
 *
 * @example
 * const r = await goLive('v2', { appDir: '/srv/app', reason: 'release v2', reload: (why) => master.reload(why) });
 * if (r.status === 'no-master') say('switched; the next `hitless start` runs v2');
 */
export function goLive(id: string, opts: GoLiveOptions): Promise<GoLiveResult> {
  return withReleaseLock(opts.appDir, () => goLiveLocked(id, opts));
}

async function goLiveLocked(id: string, opts: GoLiveOptions): Promise<GoLiveResult> {
  const now = opts.now ?? Date.now;
  const previous = await switchCurrent(opts.appDir, id);
  let outcome: ReloadOutcome;
  try {
    outcome = await opts.reload(opts.reason);
  } catch (err) {
    if (isHitlessError(err, 'ERR_NO_MASTER')) {
      await record(opts.appDir, id, { ok: true, at: now(), result: 'switched' });
      return { status: 'no-master', id, previous, pruned: await settle(opts, id, previous) };
    }
    // We do not know what the master did; the generation serving still runs the old
    // release (pinned at spawn), so pointing current back at it is the consistent state.
    await switchCurrent(opts.appDir, previous);
    const message = err instanceof Error ? err.message : String(err);
    await record(opts.appDir, id, { ok: false, at: now(), result: 'rolled-back', code: (err as { code?: string }).code ?? 'ERR', message });
    throw new HitlessError('ERR_RELEASE_ROLLED_BACK', `${opts.subject ?? `release ${id}`}: the reload request failed (${message}); current is back on ${previous ?? 'nothing'}`, {
      cause: err, details: { id, previous },
    });
  }
  if (!outcome.ok) {
    await switchCurrent(opts.appDir, previous);
    const reason = outcome.error?.message ?? 'the new workers did not become ready';
    await record(opts.appDir, id, { ok: false, at: now(), result: 'rolled-back', code: outcome.error?.code ?? 'ERR_RELOAD_FAILED', message: reason });
    // Only the newest failed release stays (this one): failed builds do not pile up until the
    // next good one. Not when nothing ran it (refused): deployRelease removes it instead.
    if (!wasRefused(outcome)) {
      const state = await readState(opts.appDir);
      await pruneReleases(opts.appDir, opts.keep ?? DEFAULT_RELEASE_KEEP, state, [previous, state.previous]);
    }
    throw new HitlessError('ERR_RELEASE_ROLLED_BACK', `${opts.subject ?? `release ${id}`} did not go live: ${reason}; current is back on ${previous ?? 'nothing'} and generation ${outcome.generation} keeps serving`, {
      details: { id, previous, outcome, code: outcome.error?.code, output: outcome.error?.output ?? [] },
    });
  }
  await record(opts.appDir, id, { ok: true, at: now(), result: 'live' });
  return { status: 'live', id, previous, outcome, pruned: await settle(opts, id, previous) };
}

/** After a switch that stays: remember the previous release and prune old ones. */
async function settle(opts: GoLiveOptions, id: string, previous: string | undefined): Promise<string[]> {
  const state = await updateState(opts.appDir, (s) => {
    if (previous !== undefined && previous !== id) s.previous = previous;
  });
  return pruneReleases(opts.appDir, opts.keep ?? DEFAULT_RELEASE_KEEP, state, [id, state.previous]);
}

export interface DeployOptions extends Omit<InstallOptions, 'appDir'>, Omit<GoLiveOptions, 'appDir' | 'reason'> {
  appDir: string;
  reason?: string;
}

/**
 * `hitless release` in one call: install, then go live unless identical to current.
 *
 * @example
 * const r = await deployRelease('/tmp/app.tgz', { appDir, prepare, keep: 5, reload });
 * // r.status: 'skipped' | 'live' | 'no-master'; throws ERR_RELEASE_ROLLED_BACK when switched back
 */
export async function deployRelease(source: string, opts: DeployOptions): Promise<DeployResult> {
  await mkdir(releasesDir(opts.appDir), { recursive: true });
  return withReleaseLock(opts.appDir, async () => {
    const installed = await installRelease(source, opts);
    if (installed.skipped) return { status: 'skipped', id: installed.id, hash: installed.hash };
    try {
      return await goLive(installed.id, { ...opts, reason: opts.reason ?? `release ${installed.id}` });
    } catch (err) {
      throw await forgetUnjudged(err, opts.appDir, installed.id);
    }
  });
}

/**
 * A release whose reload was refused before anything started (an upgrade of the master
 * under way, a stop, a configuration that does not validate) was never run: it is removed
 * instead of kept as failed, so the same release (its id, or the fetcher's artifact) can be
 * asked for again, and it does not count among the failed ones pruning keeps. Returns the
 * error to throw.
 */
async function forgetUnjudged(err: unknown, appDir: string, id: string): Promise<unknown> {
  const outcome = isHitlessError(err, 'ERR_RELEASE_ROLLED_BACK') ? err.details.outcome as ReloadOutcome | undefined : undefined;
  if (outcome === undefined || !wasRefused(outcome)) return err;
  await rm(releaseDir(appDir, id), { recursive: true, force: true });
  await updateState(appDir, (s) => {
    delete s.releases[id];
  });
  return new HitlessError('ERR_RELEASE_ROLLED_BACK', `${(err as Error).message}; nothing ran release ${id}, so it was removed: ask for it again once that is over`, {
    cause: err, details: { ...(err as HitlessError).details, removed: true },
  });
}
