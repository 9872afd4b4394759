/**
 * The run dir: a private folder holding the control socket. Its default is derived from
 * the app folder's real path, so `hitless reload` run in the same folder finds the master
 * that `hitless start` started there, without any flag.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, realpathSync, rmdirSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { HitlessError } from '../errors.js';

/**
 * Unix socket paths over ~100 bytes do not fit in sun_path (108 bytes on Linux, 104 on
 * macOS, with the final NUL); 100 fits both (docs/CONFIG.md "Run dir and control socket").
 */
const MAX_SOCKET_PATH_BYTES = 100;

export const CONTROL_SOCKET_NAME = 'control.sock';

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0;
}

/**
 * The run dir of the app at `appDir`: `override` (resolved) when given, else
 * `${XDG_RUNTIME_DIR || tmpdir()}/hitless-<uid>/<12 hex of sha256(realpath(appDir))>`.
 * Does not create anything.
 *
 * @throws HitlessError ERR_CONFIG_INVALID when the control socket path would be too long.
 * @example
 * resolveRunDir('/srv/app');             // '/run/user/1000/hitless-1000/3f2a9c0d1e4b'
 * resolveRunDir('/srv/app', './run');    // '<cwd>/run'
 */
export function resolveRunDir(appDir: string, override?: string, env: NodeJS.ProcessEnv = process.env): string {
  let dir: string;
  if (override !== undefined) {
    dir = resolve(override);
  } else {
    dir = join(env.XDG_RUNTIME_DIR || tmpdir(), `hitless-${uid()}`, appFolderHash(appDir));
  }
  const socket = join(dir, CONTROL_SOCKET_NAME);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    // The default comes from the environment: say which variable made it long.
    const from = override !== undefined ? '' : ` (the default, under ${env.XDG_RUNTIME_DIR ? 'XDG_RUNTIME_DIR' : 'the temporary folder, TMPDIR'})`;
    const fix = override !== undefined ? 'pass a shorter --run-dir' : `pass a shorter --run-dir (or "runDir" in hitless.json), or set a shorter ${env.XDG_RUNTIME_DIR ? 'XDG_RUNTIME_DIR' : 'TMPDIR'}`;
    throw new HitlessError('ERR_CONFIG_INVALID',
      `runDir: the control socket path ${socket}${from} is longer than ${MAX_SOCKET_PATH_BYTES} bytes (hitless's limit for unix socket paths, below the kernel's 107); ${fix}`);
  }
  return dir;
}

/**
 * 12 hex of sha256 of the app folder's real path: the name of its default run dir, and of
 * its master's beacon (control/beacon.ts).
 *
 * @example
 * appFolderHash('/srv/app'); // '3f2a9c0d1e4b'
 */
export function appFolderHash(appDir: string): string {
  let real: string;
  try {
    real = realpathSync(appDir);
  } catch {
    real = resolve(appDir);
  }
  return createHash('sha256').update(real).digest('hex').slice(0, 12);
}

/** `<runDir>/control.sock`. */
export function controlSocketPath(runDir: string): string {
  return join(runDir, CONTROL_SOCKET_NAME);
}

/**
 * Where a new master started by an upgrade listens until it takes control.sock: beside it,
 * and no longer than its name (unix socket paths are limited; resolveRunDir checks that one).
 *
 * @example
 * stagingSocketPath('/run/myapp', 48211); // '/run/myapp/new-48211'
 */
export function stagingSocketPath(runDir: string, pid: number): string {
  return join(runDir, `new-${pid}`);
}

/**
 * The control socket a listening socket's bound path stands for: `control.sock` itself, or
 * a staged `new-<pid>` one, which the kernel (/proc/net/unix) keeps listing under that name
 * after an upgrade's new master renamed it over control.sock. Undefined for anything else.
 *
 * @example
 * controlSocketOf('/run/myapp/new-48211'); // '/run/myapp/control.sock'
 */
export function controlSocketOf(boundPath: string): string | undefined {
  const name = basename(boundPath);
  if (name === CONTROL_SOCKET_NAME) return boundPath;
  return /^new-\d+$/.test(name) ? join(dirname(boundPath), CONTROL_SOCKET_NAME) : undefined;
}

/**
 * Removes `runDir` if nothing is left in it but empty `inner` folders (an empty compile
 * cache): a master that made its run dir and stops before anything was kept there (a start
 * that failed) leaves no empty /tmp/hitless-<uid>/<hash> behind. A folder with anything in
 * it stays.
 *
 * @example
 * removeEmptyRunDir(config.runDir, [COMPILE_CACHE_DIR]);
 */
export function removeEmptyRunDir(runDir: string, inner: string[]): void {
  for (const dir of [...inner.map((name) => join(runDir, name)), runDir]) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty, or not there: left as it is
    }
  }
}

/** Removes the staged socket a new master that failed may have left (nothing if there is none). */
export function removeStagedSocket(runDir: string, pid: number | undefined): void {
  if (pid === undefined) return;
  const path = stagingSocketPath(runDir, pid);
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // not there: nothing to clean
  }
}

/**
 * Creates the run dir (and, for the default location, its `hitless-<uid>` parent) with
 * mode 0700, then refuses it unless we own it and nobody else can write to it: another
 * user able to replace control.sock could take the master's commands.
 *
 * @throws HitlessError ERR_CONFIG_INVALID naming the folder and the fix.
 * @example
 * ensureRunDir(resolveRunDir(appDir));
 */
export function ensureRunDir(runDir: string): void {
  try {
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    // A file where the folder or one above it should be: named, rather than EEXIST/ENOTDIR.
    if (existsSync(runDir)) checkPrivate(runDir);
    else checkCreatable(runDir);
    throw new HitlessError('ERR_CONFIG_INVALID', `runDir: cannot create ${runDir}: ${(err as Error).message}; pass another --run-dir`, { cause: err });
  }
  for (const dir of guardedFolders(runDir)) checkPrivate(dir);
}

/**
 * The folders that must be ours and private for `runDir` to be safe, outermost first:
 * the run dir, and in a shared /tmp its `hitless-<uid>` parent too (whoever owns that one
 * could swap our folder for theirs).
 */
function guardedFolders(runDir: string): string[] {
  const parent = dirname(runDir);
  return basename(parent) === `hitless-${uid()}` ? [parent, runDir] : [runDir];
}

function checkPrivate(dir: string): void {
  const problem = privacyProblem(dir, lstatSync(dir));
  if (problem) throw new HitlessError('ERR_CONFIG_INVALID', problem);
}

/** Why `dir` (an existing path) cannot be a run dir, or undefined when it can. */
function privacyProblem(dir: string, st: Stats): string | undefined {
  if (!st.isDirectory()) return `runDir: ${dir} is not a folder; pass another --run-dir`;
  if (st.uid !== uid()) return `runDir: ${dir} belongs to uid ${st.uid}, not to us (uid ${uid()}); pass a --run-dir of your own`;
  if ((st.mode & 0o022) !== 0) {
    return `runDir: ${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run \`chmod 700 ${dir}\` or pass another --run-dir`;
  }
  return undefined;
}

/**
 * What `hitless check` can tell about the run dir without creating anything: the refusals
 * of {@link ensureRunDir} for a folder that exists (not a folder, writable by others, no
 * folder to create it in), and, as a warning, a folder of another user, which that user's
 * master accepts (`check` may run as root for an app's user).
 *
 * @throws HitlessError ERR_CONFIG_INVALID, with ensureRunDir's message.
 * @returns the warning, or undefined.
 */
export function checkRunDir(runDir: string): string | undefined {
  for (const dir of guardedFolders(runDir)) {
    if (!existsSync(dir)) {
      checkCreatable(dir);
      return undefined;
    }
    const st = lstatSync(dir);
    if (st.isDirectory() && st.uid !== uid()) {
      return `runDir: ${dir} belongs to uid ${st.uid}: a master started by that user accepts it, one started by you (uid ${uid()}) refuses it`;
    }
    const problem = privacyProblem(dir, st);
    if (problem) throw new HitlessError('ERR_CONFIG_INVALID', problem);
  }
  return undefined;
}

/** A folder that does not exist yet is created at start: fine, unless what is above it is not a folder. */
function checkCreatable(dir: string): void {
  let above = dirname(dir);
  while (!existsSync(above) && above !== dirname(above)) above = dirname(above);
  if (!statSync(above).isDirectory()) {
    throw new HitlessError('ERR_CONFIG_INVALID', `runDir: cannot create ${dir}: ${above} is not a folder; pass another --run-dir`);
  }
}
