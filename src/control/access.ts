/**
 * "Permission denied" on a master's control socket, said as such: the master runs as
 * another user (root, under systemd without `User=`), and its run dir (0700) keeps every
 * other user out. Whoever runs the command must be told whom to run it as, never "no master
 * is running" (which made `hitless release` switch `current` with nothing to serve it).
 */
import { lstatSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { appFolderHash, CONTROL_SOCKET_NAME } from '../config/rundir.js';
import { HitlessError } from '../errors.js';
import { commandLine, readOr } from '../core/procfs.js';
import { userName } from '../ops/privileges.js';

/** connect(2) errors that mean "not allowed", not "nothing there". */
export const DENIED_ERRNOS: ReadonlySet<string | undefined> = new Set(['EACCES', 'EPERM']);

/** This process's user name (its uid when it has no account). */
function me(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.geteuid?.() ?? '?');
  }
}

/** The effective uid of process `pid` (/proc/<pid>/status, readable by every user), if known. */
export function processUid(pid: number): number | undefined {
  const m = /^Uid:\s+\d+\s+(\d+)/m.exec(readOr(`/proc/${pid}/status`));
  return m ? Number(m[1]) : undefined;
}

/**
 * Whom to run a command as to reach a master running as `owner`.
 *
 * @example
 * `run the command ${asTheMaster('app')}`; // 'run the command as app, the master\'s user (`sudo -u app hitless …`), or as root'
 */
export function asTheMaster(owner: string | undefined): string {
  if (owner === undefined) return 'as the master\'s user (`sudo -u <user> hitless …`) or as root';
  if (owner === 'root') return 'as root, the master\'s user (`sudo hitless …`)';
  return `as ${owner}, the master's user (\`sudo -u ${owner} hitless …\`), or as root`;
}

/** The owner of a control socket: the socket's, else its run dir's (a 0700 folder hides the socket). */
function ownerOf(socketPath: string): string | undefined {
  for (const path of [socketPath, dirname(socketPath)]) {
    try {
      return userName(lstatSync(path).uid);
    } catch {
      // closed to us: try the folder above
    }
  }
  return undefined;
}

/**
 * ERR_CONTROL_ACCESS for a control socket whose connect(2) failed with EACCES or EPERM.
 *
 * @example
 * socket.on('error', (err) => DENIED_ERRNOS.has(err.code) && reject(socketAccessError(path, err)));
 */
export function socketAccessError(socketPath: string, cause: Error): HitlessError {
  const owner = ownerOf(socketPath);
  const user = me();
  const why = owner === undefined || owner !== user
    ? `the master runs as ${owner ?? 'another user'} and user ${user} may not open it; run the command ${asTheMaster(owner)}`
    : `user ${user} owns it but its modes (or its folder's) keep this command out; check them (the master makes its run dir 0700)`;
  return new HitlessError('ERR_CONTROL_ACCESS', `permission denied on the control socket ${socketPath}: ${why}`,
    { cause, details: { socket: socketPath, ...(owner === undefined ? {} : { owner }) } });
}

/**
 * Which of the `sockets` this user could not open is the one of master `pid` (user `uid`) of
 * the app whose folder hashes to `hash`: its default run dir (`…/hitless-<uid>/<hash>`), or
 * the `--run-dir` on its command line (/proc/<pid>/cmdline, readable by every user). The
 * only one when there is one; else undefined.
 */
function socketOf(pid: number, uid: number | undefined, hash: string, sockets: string[]): string | undefined {
  const byDefault = sockets.find((s) => s.endsWith(`/hitless-${uid ?? ''}/${hash}/${CONTROL_SOCKET_NAME}`));
  if (byDefault !== undefined) return byDefault;
  const runDir = runDirArg(commandLine(pid) ?? []);
  const given = runDir !== undefined ? sockets.find((s) => s === join(runDir, CONTROL_SOCKET_NAME)) : undefined;
  return given ?? (sockets.length === 1 ? sockets[0] : undefined);
}

/**
 * The absolute `--run-dir` of a master's command line (resolved), if it has one; a relative
 * one is relative to the master's folder, which another user cannot read.
 *
 * @example
 * runDirArg(['node', 'hitless', 'start', '--run-dir', '/run/app']); // '/run/app'
 */
export function runDirArg(args: string[]): string | undefined {
  const i = args.findIndex((a) => a === '--run-dir' || a.startsWith('--run-dir='));
  const runDir = i < 0 ? undefined : args[i]!.startsWith('--run-dir=') ? args[i]!.slice('--run-dir='.length) : args[i + 1];
  return runDir !== undefined && isAbsolute(runDir) ? resolve(runDir) : undefined;
}

/**
 * ERR_CONTROL_ACCESS for a master of `appDir` (pid `pid`, found by its beacon) whose
 * control socket this user could not open: one of `sockets`, which `hitless list` shows as
 * "permission denied".
 *
 * @example
 * throw appAccessError('/srv/app', 4208, ['/run/app/control.sock']);
 */
export function appAccessError(appDir: string, pid: number, sockets: string[]): HitlessError {
  const uid = processUid(pid);
  const owner = uid === undefined ? undefined : userName(uid);
  const socket = socketOf(pid, uid, appFolderHash(appDir), sockets);
  const where = socket === undefined ? 'its control socket (`hitless list` shows it as "permission denied")' : `its control socket ${socket}`;
  return new HitlessError('ERR_CONTROL_ACCESS',
    `a hitless master (pid ${pid}${owner === undefined ? '' : `, user ${owner}`}) serves ${appDir}, but user ${me()} may not open ${where}: ` +
    `permission denied; run the command ${asTheMaster(owner)}`,
    { details: { pid, ...(socket === undefined ? {} : { socket }), ...(owner === undefined ? {} : { owner }) } });
}
