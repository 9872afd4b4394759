/**
 * Watch trigger (config `watch: { paths, debounce }`): a change to a watched file or
 * folder, an upload renamed over a watched file, or a swap of the `current` symlink
 * triggers ONE master reload after `debounce` ms of quiet (see debounce.ts).
 *
 * Built on chokidar@4 rather than fs.watch: recursive fs.watch on Linux only arrived in
 * Node 20 as a JS re-implementation that missed events in folders created after the
 * watch began, and chokidar already turns inotify's rename/delete/recreate dance into
 * one `change`. A symlink (typically `<app>/current`) is watched as an entry of its
 * parent folder, never followed: rename(2) over it replaces the link itself, so a
 * watch on its target would see nothing.
 *
 * Half-uploaded files: the debounce restarts on every write, so a steady upload never
 * triggers mid-way; an upload that stalls longer than `debounce` would. Upload to a
 * temporary name and rename it into place (rsync does; scp does not) — see docs/RELEASES.md.
 */
import { lstatSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../core/logger.js';
import type { MasterConfig } from '../config/types.js';
import type { MasterHandle } from '../core/types.js';
import { ReloadTrigger } from './debounce.js';
import { STATE_FILE } from './state.js';

export interface WatchHandle {
  /** Resolves once the initial scan is done and changes are being reported. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** hitless's own scratch files: never a reason to reload. */
const OWN_FILES = /^(\.current\.\d+\.[0-9a-f]+|\.staging-.*|\.hitless-state\.json.*|\.hitless-fetch-.*|\.hitless-lock)$/;

/**
 * Starts watching `config.watch.paths` (absolute) and reloads `master` on change.
 *
 * @example
 * const w = startWatch(config, supervisor, logger); // config.watch = { paths: ['/srv/app/current'], debounce: 500 }
 * await w.ready;
 * // … later
 * await w.close();
 */
export function startWatch(config: MasterConfig, master: MasterHandle, logger: Logger): WatchHandle {
  const spec = config.watch;
  if (spec === undefined || spec.paths.length === 0) return { ready: Promise.resolve(), close: async () => {} };
  const trigger = new ReloadTrigger({
    debounce: spec.debounce,
    reload: () => master.reload('watch'),
    onResult: ({ outcome, error }) => {
      if (error !== undefined) logger.warn('watch: reload request failed', { error: error instanceof Error ? error.message : String(error) });
      else if (outcome && !outcome.ok) logger.warn('watch: reload did not go live; previous generation keeps serving', { code: outcome.error?.code });
    },
  });
  const links = new Set<string>();
  const targets = new Set<string>();
  for (const path of spec.paths) {
    let isLink = false;
    try {
      isLink = lstatSync(path).isSymbolicLink();
    } catch {
      // Not there yet: watch it as given, chokidar reports it when it appears.
    }
    if (isLink) {
      links.add(path);
      targets.add(dirname(path));
    } else targets.add(path);
  }
  const linkDirs = new Set([...links].map((l) => dirname(l)));
  const ignored = (path: string): boolean => {
    if (OWN_FILES.test(basename(path)) || basename(path) === STATE_FILE) return true;
    // In a folder watched only for a link, every other entry is ignored.
    const dir = dirname(path);
    return linkDirs.has(dir) && !links.has(path) && !spec.paths.some((p) => path === p || path.startsWith(p + '/') || p.startsWith(path + '/'));
  };
  const watchers: FSWatcher[] = [];
  let started = false;
  const onChange = (event: string, path: string): void => {
    if (!started) return;
    logger.info('watch: change', { event, path });
    trigger.poke();
  };
  const readies: Array<Promise<void>> = [];
  for (const target of targets) {
    const isLinkDir = linkDirs.has(target) && !spec.paths.includes(target);
    const w = watch(target, { ignoreInitial: true, followSymlinks: false, ignored, ...(isLinkDir ? { depth: 0 } : {}) });
    w.on('all', onChange);
    w.on('error', (err) => logger.warn('watch: error', { error: err instanceof Error ? err.message : String(err) }));
    readies.push(new Promise<void>((resolve) => w.once('ready', () => resolve())));
    watchers.push(w);
  }
  const ready = Promise.all(readies).then(() => {
    started = true;
    logger.info('watch: watching', { paths: spec.paths, debounce: spec.debounce });
  });
  return {
    ready,
    async close() {
      await Promise.all(watchers.map((w) => w.close()));
      await trigger.close();
    },
  };
}

