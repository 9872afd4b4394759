/**
 * Waits for a watched path that does not exist yet (config `watch.paths`), however many
 * of its folders are missing, and says once when it appears.
 *
 * chokidar@4 cannot be given such a path: it falls back to watching the nearest
 * existing folder for the path's last name only, so `config/app.json` with `config/`
 * missing is never seen again once `config/` appears (chokidar issues #872, #1422), and
 * each re-read of that folder reports every symlink in it (`current`) as a new file,
 * which reloaded the master for nothing at start. So hitless waits itself: a plain,
 * non-recursive `fs.watch` on the deepest folder that exists, moved one level down each
 * time the next folder appears (or up if that folder is removed), and hands the path to
 * chokidar only once it exists.
 */
import { lstatSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface PathWaiter {
  /** Stops waiting; `onAppear` is not called after this. */
  close(): void;
}

export interface AwaitPathOptions {
  /** Called once, when `path` exists (file, folder or symlink); at once if it already does. */
  onAppear: () => void;
  /** A folder on the way could not be watched (not "it vanished": that is handled). Waiting stops. */
  onError: (error: Error) => void;
}

/** lstat that answers "nothing there" rather than throwing. */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Which folder is at `dir` now (a folder removed and made again is another one). */
function folderId(dir: string): string | undefined {
  try {
    const st = statSync(dir);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The deepest folder on the way to `path` (absolute) that exists now; `/` at worst. A
 * name on the way that is a file (`config` where `config/` is expected) counts as
 * missing: the folder holding it sees it replaced by a folder.
 */
function deepestFolder(path: string): string {
  let dir = dirname(path);
  while (dir !== dirname(dir) && !isDir(dir)) dir = dirname(dir);
  return dir;
}

/**
 * Calls `onAppear` once `path` (absolute, missing now) exists.
 *
 * @example
 * const waiter = awaitPath('/srv/app/config/app.json', { onAppear: () => watchIt(), onError: (e) => log(e) });
 * // … later
 * waiter.close();
 */
export function awaitPath(path: string, opts: AwaitPathOptions): PathWaiter {
  let watcher: FSWatcher | undefined;
  let watched: string | undefined;
  let watchedId: string | undefined;
  let done = false;
  const stop = (): void => {
    done = true;
    watcher?.close();
    watcher = undefined;
  };
  /** Brings the watch to where the path stands now; loops because folders may appear meanwhile. */
  const settle = (): void => {
    while (!done) {
      if (exists(path)) {
        stop();
        opts.onAppear();
        return;
      }
      const dir = deepestFolder(path);
      // Taken before the watch: a folder replaced between the two is seen at the next look.
      const id = folderId(dir);
      if (dir === watched && id === watchedId) return;
      watcher?.close();
      watcher = undefined;
      watched = undefined;
      try {
        // Watch first, then look again (next turn of the loop): an entry made between
        // the look and the watch is not missed.
        watcher = watch(dir, (event) => {
          // 'rename' is an entry made, removed or renamed, or the folder itself removed;
          // 'change' (writes to files beside it, such as a log) cannot make the path appear.
          // Watched anew at each: a folder removed and made again can get the same inode
          // number (ext4 reuses them at once), so the id would say this watch is current while
          // it sits on the removed folder and hears nothing more (a flake of the suite).
          if (event === 'rename') {
            watched = undefined;
            settle();
          }
        });
        watcher.on('error', () => {
          watched = undefined;
          settle();
        });
        watched = dir;
        watchedId = id;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // The folder went away between the look and the watch: look again.
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        stop();
        opts.onError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  };
  settle();
  return { close: stop };
}
