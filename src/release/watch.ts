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
import { awaitPath, type PathWaiter } from './await-path.js';
import { ReloadTrigger } from './debounce.js';
import { STATE_FILE } from './state.js';

export interface WatchHandle {
  /** Resolves once the initial scan is done and changes are being reported. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** hitless's own scratch files: never a reason to reload. */
const OWN_FILES = /^(\.current\.\d+\.[0-9a-f]+|\.staging-.*|\.hitless-state\.json.*|\.hitless-fetch-.*|\.hitless-lock)$/;

/** What is at a watched path now: a symlink is watched from its folder, a missing path waited for. */
function pathKind(path: string): 'missing' | 'link' | 'other' {
  try {
    return lstatSync(path).isSymbolicLink() ? 'link' : 'other';
  } catch {
    return 'missing';
  }
}

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
  const linkDirs = new Set<string>();
  const ignored = (path: string): boolean => {
    if (OWN_FILES.test(basename(path)) || basename(path) === STATE_FILE) return true;
    // In a folder watched only for a link, every other entry is ignored, the folders on
    // the way to a watched path too: one appearing is no change to what is watched.
    const dir = dirname(path);
    return linkDirs.has(dir) && !links.has(path) && !spec.paths.some((p) => path === p || path.startsWith(p + '/'));
  };
  /** Each chokidar watcher, with its target and the watched paths it serves (a symlink's folder serves its links). */
  const watchers = new Map<FSWatcher, { target: string; serves: string[] }>();
  const waiters = new Set<PathWaiter>();
  let started = false;
  let closed = false;
  const onChange = (event: string, path: string): void => {
    if (!started) return;
    logger.info('watch: change', { event, path });
    trigger.poke();
  };
  /**
   * A watched target that is gone (a folder removed, or the folder holding a watched file):
   * chokidar would never report it again once it is made anew (a build that empties
   * `dist/` with `rm -rf`), so its paths go back to waiting until they appear.
   */
  const rewaitIfGone = (w: FSWatcher): void => {
    const entry = watchers.get(w);
    if (closed || entry === undefined || pathKind(entry.target) !== 'missing') return;
    watchers.delete(w);
    // On a later turn: closed from inside its own unlink event, chokidar can keep one of
    // its fs watchers open.
    setImmediate(() => void w.close());
    for (const path of entry.serves) {
      logger.info('watch: path removed; it will be watched again once it appears', { path });
      waitFor(path);
    }
  };
  const watchTarget = (target: string, serves: string[], linkDirOnly: boolean): Promise<void> => {
    const w = watch(target, { ignoreInitial: true, followSymlinks: false, ignored, ...(linkDirOnly ? { depth: 0 } : {}) });
    w.on('all', (event, path) => {
      onChange(event, path);
      if (event === 'unlink' || event === 'unlinkDir') rewaitIfGone(w);
    });
    w.on('error', (err) => logger.warn('watch: error', { error: err instanceof Error ? err.message : String(err) }));
    watchers.set(w, { target, serves });
    return new Promise<void>((resolve) => w.once('ready', () => resolve()));
  };
  /** A symlink is watched as an entry of its folder (see the top of this file). */
  const addLink = (path: string): string => {
    links.add(path);
    linkDirs.add(dirname(path));
    return dirname(path);
  };
  // chokidar is only ever given paths that exist: a missing one waits in awaitPath
  // (see await-path.ts for what chokidar does with it instead).
  const waitFor = (path: string): void => {
    const onError = (err: Error): void => logger.warn('watch: cannot wait for a missing path; it will not be watched', { path, error: err.message });
    // awaitPath calls onAppear at once for a path that is back already: nothing to keep then.
    let appeared = false;
    let waiter: PathWaiter | undefined;
    const onAppeared = (): void => {
      appeared = true;
      if (waiter !== undefined) waiters.delete(waiter);
      onAppear(path);
    };
    waiter = awaitPath(path, { onAppear: onAppeared, onError });
    if (!appeared) waiters.add(waiter);
  };
  const onAppear = (path: string): void => {
    if (closed) return;
    const kind = pathKind(path);
    if (kind === 'missing') return waitFor(path); // gone again already: nothing changed
    const target = kind === 'link' ? addLink(path) : path;
    // Appearing is a change like any other (a first `current`, a new config file). Told
    // once chokidar watches it, so a write meanwhile is in the reload, and later ones poke.
    void watchTarget(target, [path], target !== path).then(() => onChange('appear', path));
  };
  const targets = new Set<string>();
  for (const path of spec.paths) {
    const kind = pathKind(path);
    if (kind === 'missing') {
      logger.warn('watch: path does not exist yet; it will be watched once it appears', { path });
      waitFor(path);
    } else targets.add(kind === 'link' ? addLink(path) : path);
  }
  const readies = [...targets].map((target) => {
    const serves = spec.paths.filter((p) => p === target || (links.has(p) && dirname(p) === target));
    return watchTarget(target, serves, linkDirs.has(target) && !spec.paths.includes(target));
  });
  const ready = Promise.all(readies).then(() => {
    started = true;
    logger.info('watch: watching', { paths: spec.paths, debounce: spec.debounce });
  });
  return {
    ready,
    async close() {
      closed = true;
      for (const waiter of waiters) waiter.close();
      await Promise.all([...watchers.keys()].map((w) => w.close()));
      await trigger.close();
    },
  };
}

