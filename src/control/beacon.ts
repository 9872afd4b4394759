/**
 * A master's sign, readable by every user, that it serves an app folder. Its control socket
 * lives in a private run dir (0700), so another user's client cannot ask it anything: the
 * deploy user's `hitless release` next to a root master took "cannot connect" for "no
 * master", switched `current` and exited 0 while the old build kept serving. Each master
 * therefore also listens on an abstract unix socket named `hitless-app/<hash>/<pid>` (the
 * hash of its app folder, as in the default run dir): the kernel lists it in
 * /proc/net/unix for every user of the machine, and removes it with the master, so it
 * cannot go stale. It carries no commands: a connection to it is closed at once.
 * Linux only (abstract sockets); elsewhere there is no beacon and nothing reads one.
 */
import { createServer } from 'node:net';
import { appFolderHash } from '../config/rundir.js';
import { listeningUnixPaths, readProcNetUnix } from './discover.js';

const PREFIX = 'hitless-app/';

/** The beacon's name (without the leading NUL) for the master `pid` of `appDir`. */
export function beaconName(appDir: string, pid: number): string {
  return `${PREFIX}${appFolderHash(appDir)}/${pid}`;
}

/**
 * Listens on this master's beacon; resolves with its closer, or undefined where there is
 * none (not Linux, or the name is taken: the beacon only helps messages, never the master).
 *
 * @example
 * const beacon = await openBeacon(config.appDir); … await beacon?.close();
 */
export function openBeacon(appDir: string): Promise<{ close(): Promise<void> } | undefined> {
  if (process.platform !== 'linux') return Promise.resolve(undefined);
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen({ path: `\0${beaconName(appDir, process.pid)}` }, () => {
      server.unref();
      resolve({ close: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}

/**
 * PIDs of the masters whose beacon names `appDir` (in /proc/net/unix's text, default: this
 * machine's); undefined where the kernel lists no sockets (not Linux): nothing is known then.
 *
 * @example
 * beaconPids('/srv/app'); // [4208]
 */
export function beaconPids(appDir: string, procNetUnix: string | undefined = readProcNetUnix()): number[] | undefined {
  if (procNetUnix === undefined) return undefined;
  const hash = appFolderHash(appDir);
  return [...new Set(beacons(procNetUnix).filter((b) => b.hash === hash).map((b) => b.pid))];
}

/** One master's beacon: the hash of its app folder ({@link appFolderHash}) and its pid. */
export interface Beacon {
  hash: string;
  pid: number;
}

/**
 * Every master's beacon in /proc/net/unix's text (default: this machine's; none where it
 * cannot be read).
 *
 * @example
 * beacons(); // [{ hash: '3f2a9c0d1e4b', pid: 4208 }]
 */
export function beacons(procNetUnix: string | undefined = readProcNetUnix()): Beacon[] {
  const out: Beacon[] = [];
  // libuv binds an abstract name with the whole sun_path, NUL-padded: the kernel shows the padding as `@`s.
  for (const path of listeningUnixPaths(procNetUnix ?? '')) {
    const m = /^@hitless-app\/([0-9a-f]+)\/(\d+)@*$/.exec(path); // PREFIX, then hash/pid
    if (m) out.push({ hash: m[1]!, pid: Number(m[2]) });
  }
  return out;
}
