/**
 * Node's on-disk compile cache for workers (issue 23): the master names a folder in
 * NODE_COMPILE_CACHE, and every Node worker (>= 22.1; older versions ignore the variable)
 * stores the V8 code cache of the modules it compiles there and reads it back the next time
 * the same file is loaded. The folder is shared by the generations, so every generation after
 * the first starts from the cache of the ones before: less CPU at boot, taken from the
 * workers that serve.
 *
 * Node checks each entry against the source it was made from, so a changed file is compiled
 * afresh (and its entry rewritten); entries of files no longer loaded (an old release
 * folder) stay until the folder is emptied — the master does not prune it.
 */
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { COMPILE_CACHE_DIR, DEFAULT_COMPILE_CACHE } from '../config/defaults.js';
import type { MasterConfig } from '../config/types.js';

/** The folder workers get, or why they get none. */
export interface CompileCacheChoice {
  dir?: string;
  note?: string;
}

/**
 * The compile cache folder for `config`'s workers, created when missing: `<runDir>/compile-cache`
 * by default, the configured folder when one is named (owned by the worker user when the
 * master creates it for one), none when turned off. With `user` and the default, none: the
 * run dir is private to the master (0700), so the note says to name a folder instead (on a
 * Node with the cache, `nodeHasCache`: the master's, which the workers' `node` usually is).
 *
 * @example
 * compileCacheFolder(config, undefined); // { dir: '/run/user/1000/hitless-1000/3f2a9c0d1e4b/compile-cache' }
 */
export function compileCacheFolder(
  config: MasterConfig,
  worker: { uid?: number | undefined; gid?: number | undefined },
  nodeHasCache: boolean = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function',
): CompileCacheChoice {
  const setting = config.compileCache ?? DEFAULT_COMPILE_CACHE;
  if (setting === false) return {};
  if (setting === true && worker.uid !== undefined && worker.uid !== process.geteuid?.()) {
    // On a Node without the cache (20), naming a folder would change nothing: no advice then.
    if (!nodeHasCache) return {};
    return { note: 'compileCache: not used: workers run as another user and the run dir is private to the master; set "compileCache" to a folder that user may write' };
  }
  const dir = setting === true ? join(config.runDir, COMPILE_CACHE_DIR) : setting;
  try {
    const created = !existsSync(dir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (created && worker.uid !== undefined) chownSync(dir, worker.uid, worker.gid ?? -1);
  } catch (err) {
    return { note: `compileCache: not used: cannot create ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  return { dir };
}
