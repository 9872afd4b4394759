/**
 * Whose is a control socket this user may not open (`hitless list` as another user than the
 * master's)? The master cannot be asked, but its beacon (beacon.ts) gives its pid and the
 * hash of its app folder, for every user: the run dir leads to the beacon (a default run
 * dir is `…/hitless-<uid>/<hash>`; a `--run-dir` is on the master's command line, which
 * every user can read), and the app folder is whichever folder at hand hashes the same:
 * this command's folder or one above it, or a path on the master's command line (its
 * `--config`, the `node_modules` its hitless runs from). A hash only confirms a folder,
 * never names one, so an app folder nothing points at stays unknown.
 */
import { basename, dirname, isAbsolute, resolve, sep } from 'node:path';
import { appFolderHash } from '../config/rundir.js';
import { commandLine } from '../core/procfs.js';
import { processUid, runDirArg } from './access.js';
import { beacons, type Beacon } from './beacon.js';

/** What the beacon tells of a master that could not be asked. */
export interface MasterIdentity {
  pid?: number;
  appDir?: string;
}

/** Where {@link identifyMaster} reads the machine; tests pass their own. */
export interface IdentifyHost {
  beacons: Beacon[];
  commandLine(pid: number): string[] | undefined;
  uidOf(pid: number): number | undefined;
  /** This command's folder: it and the folders above it are candidates. */
  cwd: string;
  hashOf(dir: string): string;
}

const realHost = (): IdentifyHost => ({ beacons: beacons(), commandLine, uidOf: processUid, cwd: process.cwd(), hashOf: appFolderHash });

/** `dir` and every folder above it. */
function upwards(dir: string): string[] {
  const out = [dir];
  while (dirname(out[out.length - 1]!) !== out[out.length - 1]) out.push(dirname(out[out.length - 1]!));
  return out;
}

/** Folders a master's command line points at: its absolute arguments, their folders, and the folder holding their `node_modules`. */
function foldersOnCommandLine(args: string[]): string[] {
  const out: string[] = [];
  for (const arg of args) {
    const value = arg.startsWith('--') && arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : arg;
    if (!isAbsolute(value)) continue;
    const path = resolve(value);
    out.push(path, dirname(path));
    const i = path.indexOf(`${sep}node_modules${sep}`);
    if (i > 0) out.push(path.slice(0, i));
  }
  return out;
}

/**
 * The pid and app folder of the master whose control socket is in `runDir`, as far as its
 * beacon tells; `{}` when no beacon leads there.
 *
 * @example
 * identifyMaster('/tmp/hitless-0/3f2a9c0d1e4b'); // { pid: 4208, appDir: '/srv/app' }
 */
export function identifyMaster(runDir: string, host: IdentifyHost = realHost()): MasterIdentity {
  const dir = resolve(runDir);
  const mine = host.beacons.filter((b) => {
    const uid = host.uidOf(b.pid);
    const byDefault = basename(dir) === b.hash && uid !== undefined && basename(dirname(dir)) === `hitless-${uid}`;
    return byDefault || runDirArg(host.commandLine(b.pid) ?? []) === dir;
  });
  if (mine.length === 0) return {};
  // Two beacons for one run dir: a master upgrade under way (the same app): no single pid.
  const pid = new Set(mine.map((b) => b.pid)).size === 1 ? mine[0]!.pid : undefined;
  const hash = mine[0]!.hash;
  const candidates = [...upwards(resolve(host.cwd)), ...mine.flatMap((b) => foldersOnCommandLine(host.commandLine(b.pid) ?? []))];
  const appDir = [...new Set(candidates)].find((c) => host.hashOf(c) === hash);
  return { ...(pid === undefined ? {} : { pid }), ...(appDir === undefined ? {} : { appDir }) };
}
