/**
 * The run dir: a private folder holding the control socket. Its default is derived from
 * the app folder's real path, so `hitless reload` run in the same folder finds the master
 * that `hitless start` started there, without any flag.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, realpathSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { HitlessError } from '../errors.js';

/** Unix socket paths over ~100 bytes do not fit in sun_path (108 bytes on Linux, 104 on macOS). */
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
    let real: string;
    try {
      real = realpathSync(appDir);
    } catch {
      real = resolve(appDir);
    }
    const hash = createHash('sha256').update(real).digest('hex').slice(0, 12);
    dir = join(env.XDG_RUNTIME_DIR || tmpdir(), `hitless-${uid()}`, hash);
  }
  const socket = join(dir, CONTROL_SOCKET_NAME);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    throw new HitlessError('ERR_CONFIG_INVALID',
      `runDir: the control socket path ${socket} is longer than ${MAX_SOCKET_PATH_BYTES} bytes (unix socket limit); pass a shorter --run-dir`);
  }
  return dir;
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
    throw new HitlessError('ERR_CONFIG_INVALID', `runDir: cannot create ${runDir}: ${(err as Error).message}; pass another --run-dir`, { cause: err });
  }
  checkPrivate(runDir);
  // In a shared /tmp, whoever owns hitless-<uid> could swap our folder for theirs.
  const parent = dirname(runDir);
  if (basename(parent) === `hitless-${uid()}`) checkPrivate(parent);
}

function checkPrivate(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory()) {
    throw new HitlessError('ERR_CONFIG_INVALID', `runDir: ${dir} is not a folder; pass another --run-dir`);
  }
  if (st.uid !== uid()) {
    throw new HitlessError('ERR_CONFIG_INVALID',
      `runDir: ${dir} belongs to uid ${st.uid}, not to us (uid ${uid()}); pass a --run-dir of your own`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new HitlessError('ERR_CONFIG_INVALID',
      `runDir: ${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run \`chmod 700 ${dir}\` or pass another --run-dir`);
  }
}
