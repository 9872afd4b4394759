/**
 * Where "the hitless installed now" is, for each way of installing it (docs/CLI.md,
 * "hitless upgrade"; docs/systemd.md): a path that a package manager's next install of
 * hitless points at the new copy, which the upgrade runs and `hitless startup`'s unit names.
 *
 * - npm, and global installs: `node_modules/.bin/hitless`, `/usr/bin/hitless` and
 *   `node_modules/hitless` are symlinks or folders an install replaces: the path as given
 *   stays right (it is resolved again when run).
 * - pnpm: the `.bin` shim runs `node_modules/.pnpm/hitless@<spec>/node_modules/hitless/…`,
 *   the folder of that one version, which `pnpm add` of another leaves in place until a
 *   prune (h23 F3, F5). The stable name is the app's `node_modules/hitless` symlink, which
 *   `pnpm add` points at the new folder: the same file under it.
 * - Yarn Plug'n'Play: hitless lives in a zip archive (through a `__virtual__` folder) that
 *   only Yarn's runtime reads, at a path each version changes; there is no stable path,
 *   only Yarn's resolution from the app folder (done by the caller, in a child process).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';

/** A file of hitless in pnpm's store: the folder holding that `node_modules/.pnpm`, and the file's path inside the package. */
const PNPM_STORE = /^(.*)\/node_modules\/\.pnpm\/[^/]+\/node_modules\/hitless\/(.+)$/;
/** A path only Yarn Plug'n'Play's runtime can read: a virtual folder, or inside a zip archive. */
const PNP_PATH = /\/__virtual__\/|\.zip\//;
/** The path of a file inside the hitless package (the last `node_modules/hitless/`). */
const IN_PACKAGE = /^.*\/node_modules\/hitless\/(.+)$/;

/** A copy of hitless: its package folder (as found, not resolved), its real folder and its version. */
export interface HitlessCopy {
  dir: string;
  real: string;
  version: string;
  /** The CLI of that copy (its package.json `bin`), under `dir`. */
  cli: string;
}

/** Whether `file` lies where only Yarn Plug'n'Play's runtime reads (a zip archive or a virtual folder). */
export function isPnpPath(file: string): boolean {
  return PNP_PATH.test(file);
}

/** The path of `file` inside the hitless package it belongs to (`build/src/cli/main.js`), if it is under a `node_modules/hitless/`. */
export function pathInPackage(file: string): string | undefined {
  return IN_PACKAGE.exec(file)?.[1];
}

function readCopy(dir: string): HitlessCopy | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown; bin?: unknown };
    if (pkg.name !== 'hitless' || typeof pkg.version !== 'string') return undefined;
    const bin = typeof pkg.bin === 'string' ? pkg.bin : (pkg.bin as Record<string, unknown> | undefined)?.hitless;
    return { dir, real: realpathSync(dir), version: pkg.version, cli: join(dir, typeof bin === 'string' ? bin : 'build/src/cli/main.js') };
  } catch {
    return undefined;
  }
}

/**
 * The hitless package `file` belongs to: the nearest folder above it whose package.json is
 * hitless's.
 *
 * @example
 * copyOf('/srv/app/node_modules/hitless/build/src/cli/main.js'); // { dir: '/srv/app/node_modules/hitless', version: '0.2.0', … }
 */
export function copyOf(file: string): HitlessCopy | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const copy = readCopy(dir);
    if (copy) return copy;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The hitless the app folder has installed now, as Node would find `hitless` from it: the
 * first `node_modules/hitless` from `appDir` up (none under Yarn Plug'n'Play).
 *
 * @example
 * appCopy('/srv/app'); // { dir: '/srv/app/node_modules/hitless', real: '/srv/app/node_modules/.pnpm/hitless@0.2.0/node_modules/hitless', … }
 */
export function appCopy(appDir: string): HitlessCopy | undefined {
  for (let dir = appDir; ; dir = dirname(dir)) {
    const copy = readCopy(join(dir, 'node_modules', 'hitless'));
    if (copy) return copy;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * `file` under a name the package manager's next install of hitless points at the new copy:
 * for a file in pnpm's versioned store, the same file under the `node_modules/hitless`
 * symlink of that store's project (the app's, found from `appDir` up, or the store's own
 * project: a workspace root, pnpm's global folder); any other path as it is.
 *
 * @example
 * stablePath('/srv/app/node_modules/.pnpm/hitless@0.1.0/node_modules/hitless/build/src/cli/main.js', '/srv/app');
 * // '/srv/app/node_modules/hitless/build/src/cli/main.js'
 */
export function stablePath(file: string, appDir: string): string {
  const m = PNPM_STORE.exec(file);
  if (!m) return file;
  const [, root, inside] = m as unknown as [string, string, string];
  const store = join(root, 'node_modules', '.pnpm') + sep;
  for (let dir = appDir; ; dir = dirname(dir)) {
    const link = join(dir, 'node_modules', 'hitless');
    try {
      if (realpathSync(link).startsWith(store)) return join(link, inside);
    } catch {
      // No hitless here: look further up.
    }
    if (dirname(dir) === dir) break;
  }
  const own = join(root, 'node_modules', 'hitless');
  return existsSync(join(own, inside)) ? join(own, inside) : file;
}
