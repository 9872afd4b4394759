/**
 * The inventory of inherited listening sockets (systemd socket-activation convention):
 * LISTEN_FDS sockets start at fd 3, named by LISTEN_FDNAMES, valid only when LISTEN_PID is
 * this process. The environment is read once and then unset, like
 * sd_listen_fds(unset_environment=1), so programs the app spawns do not take the fds for theirs.
 */
import { SD_LISTEN_FDS_START } from './defaults.js';

/** One inherited socket. */
export interface InheritedFd {
  fd: number;
  /** Name from LISTEN_FDNAMES, or systemd's default "unknown" when none was given. */
  name: string;
}

const LISTEN_VARS = ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID'] as const;

/**
 * Parses the LISTEN_* variables of `env` for process `pid`. Returns [] when they are absent,
 * malformed, or belong to another process.
 *
 * @example
 * parseListenEnv({ LISTEN_FDS: '2', LISTEN_FDNAMES: 'http:admin', LISTEN_PID: '42' }, 42);
 * // [{ fd: 3, name: 'http' }, { fd: 4, name: 'admin' }]
 */
export function parseListenEnv(env: NodeJS.ProcessEnv, pid: number): InheritedFd[] {
  const count = env.LISTEN_FDS;
  const owner = env.LISTEN_PID;
  if (count === undefined || !/^\d+$/.test(count)) return [];
  // LISTEN_PID names the process the fds were meant for; a child that inherited our
  // environment must not adopt them (sd_listen_fds does the same check).
  if (owner === undefined || !/^\d+$/.test(owner) || Number(owner) !== pid) return [];
  const names = env.LISTEN_FDNAMES === undefined || env.LISTEN_FDNAMES === '' ? [] : env.LISTEN_FDNAMES.split(':');
  const result: InheritedFd[] = [];
  for (let i = 0; i < Number(count); i++) {
    result.push({ fd: SD_LISTEN_FDS_START + i, name: names[i] || 'unknown' });
  }
  return result;
}

let inventory: InheritedFd[] | undefined;
/** LISTEN_PID when it named another process (this one runs under the worker, not as it). */
let listenOwner: number | undefined;
/** Adopted fds, and who adopted each: a server of the app, or serve()'s relay for unclaimed sockets. */
const adopted = new Map<number, 'server' | 'relay'>();

/** The inherited sockets of this process (read from the environment once, then unset there). */
export function inheritedFds(): readonly InheritedFd[] {
  if (inventory === undefined) {
    inventory = parseListenEnv(process.env, process.pid);
    const owner = process.env.LISTEN_PID;
    if (owner !== undefined && /^\d+$/.test(owner) && Number(owner) !== process.pid) listenOwner = Number(owner);
    for (const name of LISTEN_VARS) delete process.env[name];
  }
  return inventory;
}

/**
 * The pid LISTEN_PID named when it was not this process: the master's sockets were meant
 * for that process (the worker it started), and this one runs under it (`npm start`,
 * `npx`, the `tsx` CLI run the app in a child). Undefined otherwise.
 */
export function foreignListenPid(): number | undefined {
  inheritedFds();
  return listenOwner;
}

/** Marks `fd` adopted (by an app's server, or by serve()'s relay); returns false when it already was. */
export function claimFd(fd: number, by: 'server' | 'relay' = 'server'): boolean {
  if (adopted.has(fd)) return false;
  adopted.set(fd, by);
  return true;
}

/** Who adopted `fd`, if anyone. */
export function claimOf(fd: number): 'server' | 'relay' | undefined {
  return adopted.get(fd);
}

/** Releases a claim after a failed listen, so a retry can adopt the fd. */
export function releaseFd(fd: number): void {
  adopted.delete(fd);
}
