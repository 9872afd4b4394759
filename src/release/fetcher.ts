/**
 * Fetcher (config `fetch`), overseer's model: poll an artifact URL, and when it changed,
 * download it, verify its sha256, extract it safely and install it as a release through
 * the same path as `hitless release` (deploy.ts), then reload; switch back on failure.
 *
 * Every failure (HTTP error, timeout, checksum, size, truncation, unsafe archive) leaves
 * `current` untouched, logs one line with its code, and polling goes on. An artifact
 * that failed to go live is remembered by sha256 in the release state file and skipped
 * until the artifact changes. HTTP validators (ETag, Last-Modified) are persisted too,
 * so a restarted master does not download the same artifact again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HitlessError, isHitlessError } from '../errors.js';
import type { Logger } from '../core/logger.js';
import type { FetchConfig, MasterConfig } from '../config/types.js';
import type { MasterHandle, ReloadOutcome } from '../core/types.js';
import { DEFAULT_RELEASE_KEEP } from '../config/defaults.js';
import { deployRelease } from './deploy.js';
import { download, fetchText, pickChecksum } from './download.js';
import { safeUrl } from '../text/url.js';
import { releasesDir } from './layout.js';
import { readState, STATE_FILE, updateState, type FetchState } from './state.js';

export type PollResult =
  | { status: 'not-modified' | 'unchanged' | 'known-bad' | 'skipped-identical' }
  | { status: 'live' | 'rolled-back'; id: string }
  | { status: 'error'; code: string; message: string };

export interface Fetcher {
  /** One poll, start to end (the loop calls it; tests call it directly). */
  pollOnce(): Promise<PollResult>;
  close(): Promise<void>;
}

type Config = Pick<MasterConfig, 'appDir' | 'release'> & { fetch: FetchConfig };

/** How often an error that repeats at every poll is logged again. */
const REPEAT_LOG_MS = 10 * 60_000;

/** Says whether a message is worth logging: a new one, or one last said `everyMs` ago. */
class RepeatFilter {
  #last: { key: string; at: number } | undefined;
  constructor(private readonly everyMs: number, private readonly now: () => number) {}
  fresh(key: string): boolean {
    const now = this.now();
    if (this.#last?.key === key && now - this.#last.at < this.everyMs) return false;
    this.#last = { key, at: now };
    return true;
  }
  /** A poll that went well: the next error is new whatever it says. */
  clear(): void {
    this.#last = undefined;
  }
}

/** What a failed artifact's log line adds: these bytes are not tried again, and how to. */
export function notRetried(sha256: string, appDir: string): string {
  return `these bytes (sha256 ${sha256}) will not be retried until the artifact changes; to retry them, ` +
    `release them by hand (hitless release <file>), or remove ${sha256} from "failedArtifacts" and the "fetch" entry ` +
    `in ${join(releasesDir(appDir), STATE_FILE)}`;
}

/**
 * A fetcher without its timer: `pollOnce()` does one full poll. `now` (default Date.now) is
 * the clock of release ids and of the repeated-error filter.
 *
 * @example
 * const f = createFetcher(config, supervisor, logger);
 * const r = await f.pollOnce(); // { status: 'live', id: '20261121T101500Z-3f9a1c2' }
 */
export function createFetcher(config: Config, master: MasterHandle, logger: Logger, now: () => number = Date.now): Fetcher {
  const spec = config.fetch;
  const abort = new AbortController();
  const url = safeUrl(spec.url);
  // A state that lasts (a 404 before the first publish, a bad checksum file) is said once,
  // then again every REPEAT_LOG_MS while it lasts, not at every poll.
  const repeats = new RepeatFilter(REPEAT_LOG_MS, now);
  // What the state file keeps to tell this URL from another: no query string in clear (a
  // presigned URL's signature), a hash of the whole URL instead.
  const urlKey = `${url}#${createHash('sha256').update(spec.url).digest('hex').slice(0, 16)}`;

  async function saveSeen(seen: Omit<FetchState, 'url'>, failed?: string): Promise<void> {
    await updateState(config.appDir, (s) => {
      s.fetch = { url: urlKey, ...seen };
      if (failed !== undefined && !s.failedArtifacts.includes(failed)) s.failedArtifacts = [...s.failedArtifacts, failed].slice(-50);
    });
  }

  /** One poll; a poll that ends well makes the next error a new one to log. */
  async function pollOnce(): Promise<PollResult> {
    const result = await poll();
    if (result.status !== 'error') repeats.clear();
    return result;
  }

  async function poll(): Promise<PollResult> {
    const state = await readState(config.appDir);
    const known = state.fetch?.url === urlKey ? state.fetch : undefined;
    // The download lands beside the releases (the same disk, not a small tmpfs). A folder
    // made for it goes again when the poll leaves nothing there (an error before anything
    // was fetched): no empty releases/ in an app folder that has never had a release.
    const made = await mkdir(releasesDir(config.appDir), { recursive: true });
    const tmp = join(releasesDir(config.appDir), `.hitless-fetch-${randomBytes(4).toString('hex')}.tgz`);
    try {
      const got = await download({
        url: spec.url, headers: spec.headers, maxBytes: spec.maxBytes, timeout: spec.timeout,
        etag: known?.etag, lastModified: known?.lastModified, dest: tmp, signal: abort.signal,
      });
      if (got.status === 'not-modified') return { status: 'not-modified' };
      const expected = spec.sha256 ?? (spec.sha256Url
        ? pickChecksum(await fetchText(spec.sha256Url, spec.headers, spec.timeout, abort.signal), spec.url)
        : undefined);
      if (expected !== undefined && expected.toLowerCase() !== got.sha256) {
        // Validators are not saved: the checksum file may simply be updated after the artifact.
        throw new HitlessError('ERR_FETCH_CHECKSUM', `${url}: sha256 is ${got.sha256}, expected ${expected.toLowerCase()}; not installed`);
      }
      const seen = { sha256: got.sha256, ...(got.etag ? { etag: got.etag } : {}), ...(got.lastModified ? { lastModified: got.lastModified } : {}) };
      // The last artifact installed or judged, whatever URL it came from: a rotated
      // presigned URL for the same bytes must not undo a manual rollback.
      if (state.fetch?.sha256 === got.sha256) {
        await saveSeen(seen);
        return { status: 'unchanged' };
      }
      if (state.failedArtifacts.includes(got.sha256)) {
        await saveSeen(seen);
        logger.warn(`fetch: artifact failed before; ${notRetried(got.sha256, config.appDir)}`, { url, sha256: got.sha256 });
        return { status: 'known-bad' };
      }
      logger.info('fetch: new artifact', { url, sha256: got.sha256, bytes: got.bytes });
      try {
        const r = await deployRelease(tmp, {
          appDir: config.appDir, kind: 'archive', label: url, artifactSha256: got.sha256, now,
          prepare: config.release?.prepare, keep: config.release?.keep ?? DEFAULT_RELEASE_KEEP, reason: 'fetch',
          reload: (why) => master.reload(why),
          onOutput: (stream, chunk) => {
            for (const line of chunk.split('\n')) if (line !== '') logger.info(`fetch: prepare ${stream}: ${line}`);
          },
        });
        await saveSeen(seen);
        if (r.status === 'skipped') {
          logger.info('fetch: artifact content equals the current release; nothing to do', { id: r.id });
          return { status: 'skipped-identical' };
        }
        logger.info('fetch: release is live', { id: r.id });
        return { status: 'live', id: r.id };
      } catch (err) {
        // Refused before anything started (an upgrade of the master under way, a stop, a
        // configuration that does not validate): the artifact was not judged, so it is not
        // remembered as failed; the next poll downloads it again and asks again.
        const refused = isHitlessError(err, 'ERR_RELEASE_ROLLED_BACK') && err.details.removed === true ? err.details.outcome as ReloadOutcome : undefined;
        if (refused !== undefined) {
          logger.warn(`fetch: ${err instanceof Error ? err.message : String(err)}; the artifact was not judged: asked again at the next poll`, { code: refused.error?.code });
          return { status: 'error', code: refused.error?.code ?? 'ERR_RELEASE_ROLLED_BACK', message: refused.error?.message ?? 'the reload was refused' };
        }
        if (isHitlessError(err) && ['ERR_RELEASE_ROLLED_BACK', 'ERR_RELEASE_UNSAFE_ARCHIVE', 'ERR_RELEASE_SOURCE', 'ERR_RELEASE_PREPARE'].includes(err.code)) {
          await saveSeen(seen, got.sha256);
          // Said here, once: the later polls skip these bytes without a word (a 304, or the
          // same sha256 as the last judged), and an operator who fixed an outside cause
          // would wait for a retry that never comes.
          const untouched = err.code === 'ERR_RELEASE_ROLLED_BACK' || err.code === 'ERR_RELEASE_PREPARE' ? '' : '; current release untouched';
          logger.error(`fetch: ${err.message}${untouched}; ${notRetried(got.sha256, config.appDir)}`, { code: err.code, sha256: got.sha256 });
          if (err.code === 'ERR_RELEASE_ROLLED_BACK') {
            for (const line of (err.details.output as string[] | undefined) ?? []) logger.error(`  | ${line}`);
            return { status: 'rolled-back', id: String(err.details.id) };
          }
          return { status: 'error', code: err.code, message: err.message };
        }
        throw err;
      }
    } catch (err) {
      const code = isHitlessError(err) ? err.code : 'ERR_FETCH_HTTP';
      const message = err instanceof Error ? err.message : String(err);
      if (!abort.signal.aborted && repeats.fresh(`${code} ${message}`)) {
        logger.error(`fetch: ${message}; current release untouched, polling goes on (the same error again is logged every ${REPEAT_LOG_MS / 60_000} min)`, { code });
      }
      return { status: 'error', code, message };
    } finally {
      await rm(tmp, { force: true });
      if (made !== undefined) await rmdir(releasesDir(config.appDir)).catch(() => undefined);
    }
  }

  return {
    pollOnce,
    async close() {
      abort.abort();
    },
  };
}

/**
 * Starts polling `config.fetch.url` every `interval` ms (the first poll at once).
 *
 * @example
 * const f = startFetcher(config, supervisor, logger);
 * await f.close(); // stops the timer, aborts a download in progress, waits for it
 */
export function startFetcher(config: MasterConfig, master: MasterHandle, logger: Logger): { close(): Promise<void> } {
  if (config.fetch === undefined) return { close: async () => {} };
  const fetcher = createFetcher({ appDir: config.appDir, release: config.release, fetch: config.fetch }, master, logger);
  const interval = config.fetch.interval;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let closed = false;
  const tick = (): void => {
    running = fetcher.pollOnce().finally(() => {
      running = undefined;
      if (!closed) timer = setTimeout(tick, interval);
    });
  };
  logger.info('fetch: polling', { url: safeUrl(config.fetch.url), interval });
  tick();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await fetcher.close();
      await running;
    },
  };
}
