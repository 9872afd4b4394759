/**
 * Which master a client command talks to, when the run dir computed from the folder (the
 * rule `hitless start` follows, config/locate.ts) has no master: the master on this machine
 * whose app folder is this one. That is the case of a master started by systemd (`hitless
 * startup` gives it `--run-dir /run/<name>`) or from a shell with another XDG_RUNTIME_DIR:
 * `hitless status` in the app folder finds it anyway, as `pm2 status` would.
 */
import { realpathSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve, sep } from 'node:path';
import { findConfigFile } from '../config/file.js';
import { locateRunDir } from '../config/locate.js';
import { controlSocketPath } from '../config/rundir.js';
import type { HitlessError } from '../errors.js';
import { appAccessError, DENIED_ERRNOS, processUid, socketAccessError } from './access.js';
import { beaconPids } from './beacon.js';
import { discoverMasters, type FoundMaster } from './discover.js';

/**
 * Resolves true when something accepts on the control socket of `runDir`; rejects with
 * ERR_CONTROL_ACCESS when this user may not connect (another user's master).
 */
function answers(runDir: string): Promise<boolean> {
  return new Promise((resolvePromise, reject) => {
    const path = controlSocketPath(runDir);
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (DENIED_ERRNOS.has(err.code)) reject(socketAccessError(path, err));
      else resolvePromise(false);
    });
  });
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * The run dir of this app's master: `--run-dir` as given; else the computed one when a
 * master answers there; else the run dir of the one running master whose app folder is
 * this app's; else the computed one (so the "no master" error names where it looked).
 * Throws ERR_CONTROL_ACCESS when that master is another user's (its control socket, or
 * one that serves this folder by its beacon, says "permission denied"): a client command
 * must not take it for "no master".
 * A config file that cannot be parsed is reported to `warn` (stderr by default) and does not
 * stop the search: the running master is what the command is for.
 *
 * @example
 * const runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
 */
export async function findRunDir(options: {
  config?: string | undefined; runDir?: string | undefined; cwd?: string; env?: NodeJS.ProcessEnv;
  warn?: (line: string) => void;
}): Promise<string> {
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const computed = locateRunDir({
    ...options,
    unreadable: (err) => warn(`hitless: warning: ${err.message}${(err.cause as NodeJS.ErrnoException | undefined)?.code === 'EACCES' ? '' : ' (a running master keeps the configuration it has; fix the file before the next reload)'}`),
  });
  if ((await answers(computed)) || options.runDir !== undefined) return computed;
  const cwd = options.cwd ?? process.cwd();
  const configPath = findConfigFile(options.config, cwd);
  const mine = await mastersOfApp(configPath ? dirname(configPath) : cwd, options.env);
  // Another user's master serves this folder: "no master" would be false (release switched current on it).
  if (mine.reachable.length === 0 && mine.denied) throw mine.denied;
  return mine.reachable.length === 1 ? mine.reachable[0]!.runDir : computed;
}

/** The masters of one app folder: those this user can ask, and whether another user's runs. */
export interface AppMasters {
  /** Masters whose status names this app folder. */
  reachable: FoundMaster[];
  /**
   * When none is reachable but another user's master serves the folder (its beacon, and a
   * control socket that said "permission denied"): ERR_CONTROL_ACCESS naming it.
   */
  denied?: HitlessError;
}

/**
 * The running masters of `appDir`, whatever their run dirs (`hitless list`'s discovery).
 *
 * @example
 * const { reachable, denied } = await mastersOfApp('/srv/app');
 */
export async function mastersOfApp(appDir: string, env?: NodeJS.ProcessEnv): Promise<AppMasters> {
  const dir = real(appDir);
  const found = await discoverMasters({ env });
  const reachable = found.filter((m) => m.status?.app !== undefined && real(m.status.app.dir) === dir);
  if (reachable.length > 0) return { reachable };
  const me = process.geteuid?.();
  const others = (beaconPids(dir) ?? []).filter((pid) => {
    const uid = processUid(pid);
    return uid !== undefined && uid !== me;
  });
  const sockets = found.filter((m) => m.error !== undefined).map((m) => controlSocketPath(m.runDir));
  return others.length > 0 && sockets.length > 0 ? { reachable, denied: appAccessError(dir, others[0]!, sockets) } : { reachable };
}

/**
 * When no master answers for `cwd`: a master whose app folder is above it (the command was
 * run from a subfolder of the app), the nearest one, as a phrase for the "no master"
 * message; undefined when there is none. With `inReleases`, only a master whose
 * `releases/` holds `cwd` (its `current` release, say).
 *
 * @example
 * await masterAbove('/srv/app/public'); // 'a master runs for /srv/app (pid 4208), a folder above this one: …'
 */
export async function masterAbove(cwd: string, env?: NodeJS.ProcessEnv, options: { inReleases?: boolean } = {}): Promise<string | undefined> {
  const here = real(cwd);
  // inReleases: only a master whose releases hold this folder (run in `current/`, which
  // resolves into releases/<id>), not any master of a folder above (a home folder's).
  const root = (dir: string): string => (options.inReleases ? join(real(dir), 'releases') : real(dir));
  const above = (await discoverMasters({ env })).filter((m) => {
    const dir = m.status?.app?.dir;
    return dir !== undefined && here.startsWith(root(dir) + sep);
  });
  // The nearest: the longest app folder above this one.
  const [m] = above.sort((a, b) => (b.status?.app?.dir.length ?? 0) - (a.status?.app?.dir.length ?? 0));
  if (m?.status === undefined) return undefined;
  return `a master runs for ${m.status.app?.dir ?? m.runDir} (pid ${m.status.pid}), a folder above this one: run the command there, or pass --run-dir ${m.runDir}`;
}
