/**
 * Every master on this machine, found through its control socket (`hitless list`, and the
 * bind error that names the master holding a port). A master's only public trace is the
 * socket `<runDir>/control.sock` it listens on, wherever the run dir is (the default one
 * under `$XDG_RUNTIME_DIR` or the temp folder, `/run/<app>` under systemd, a `--run-dir`):
 * on Linux the kernel lists every listening unix socket with its path in /proc/net/unix,
 * so no registry file is needed and none can go stale. Elsewhere, the default run dirs of
 * this user are scanned. Each candidate is asked for its status; a socket that does not
 * answer in the control protocol is not a master and is left out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CONTROL_SOCKET_NAME, controlSocketOf } from '../config/rundir.js';
import { controlRequest } from './client.js';
import { isHitlessError } from '../errors.js';
import type { StatusSnapshot } from '../core/types.js';

/** How long one candidate socket has to answer `status`. */
export const DISCOVER_TIMEOUT_MS = 2000;
/** __SO_ACCEPTCON in /proc/net/unix's Flags column: the socket listens. */
const SO_ACCEPTCON = 0x10000;

/** One master found: its status, or why it could not be asked (another user's socket). */
export interface FoundMaster {
  runDir: string;
  status?: StatusSnapshot;
  /** Set when the socket exists but could not be asked (permission denied: another user's master). */
  error?: string;
  /** A master that could not be asked: its pid and app folder when its beacon tells them (control/identify.ts). */
  pid?: number;
  appDir?: string;
}

/**
 * Paths of the listening unix sockets named `control.sock`, from /proc/net/unix (Linux).
 * A master started by an upgrade is listed under the staged name it bound (`new-<pid>`),
 * though it serves `control.sock` of the same folder: it counts as that one.
 *
 * @example
 * listeningControlSockets(readFileSync('/proc/net/unix', 'utf8')); // ['/run/myapp/control.sock', …]
 */
export function listeningControlSockets(procNetUnix: string): string[] {
  const out = new Set<string>();
  for (const path of listeningUnixPaths(procNetUnix)) {
    const control = path.startsWith('/') ? controlSocketOf(path) : undefined;
    if (control !== undefined) out.add(control);
  }
  return [...out];
}

/**
 * Paths of every listening unix socket in /proc/net/unix's text, abstract ones with their
 * leading `@` (the kernel's notation for the NUL byte).
 *
 * @example
 * listeningUnixPaths(readProcNetUnix() ?? ''); // ['/run/myapp/control.sock', '@hitless-app/3f2a9c0d1e4b/4208', …]
 */
export function listeningUnixPaths(procNetUnix: string): string[] {
  return unixTableRows(procNetUnix).filter((row) => row.listening).map((row) => row.path);
}

/** A bound unix socket of /proc/net/unix (`Num RefCount Protocol Flags Type St Inode Path`). */
export interface UnixTableRow {
  path: string;
  inode: string;
  listening: boolean;
}

/**
 * The rows of /proc/net/unix's text that have a path (bound sockets), abstract ones with
 * their leading `@`.
 *
 * @example
 * unixTableRows(readProcNetUnix() ?? '').find((row) => row.inode === '333'); // { path: '/run/myapp.sock', inode: '333', listening: true }
 */
export function unixTableRows(procNetUnix: string): UnixTableRow[] {
  const out: UnixTableRow[] = [];
  for (const line of procNetUnix.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const path = cols[7];
    if (cols.length < 8 || path === undefined) continue;
    out.push({ path, inode: cols[6] ?? '', listening: (parseInt(cols[3] ?? '0', 16) & SO_ACCEPTCON) !== 0 });
  }
  return out;
}

/** /proc/net/unix's text; undefined where there is none (not Linux). */
export function readProcNetUnix(): string | undefined {
  try {
    return readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return undefined;
  }
}

/** Control sockets in this user's default run dirs (`<base>/hitless-<uid>/<hash>/control.sock`). */
function defaultRunDirSockets(env: NodeJS.ProcessEnv): string[] {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const bases = [...new Set([env.XDG_RUNTIME_DIR, tmpdir()].filter((b): b is string => !!b))];
  return bases.flatMap((base) => {
    const parent = join(base, `hitless-${uid}`);
    try {
      return readdirSync(parent).map((hash) => join(parent, hash, CONTROL_SOCKET_NAME));
    } catch {
      return [];
    }
  });
}

/**
 * The candidate control sockets of this machine: every listening one on Linux, plus this
 * user's default run dirs (the only source elsewhere).
 */
export function candidateSockets(env: NodeJS.ProcessEnv = process.env): string[] {
  // Not Linux: the default run dirs are all we can see.
  const fromKernel = listeningControlSockets(readProcNetUnix() ?? '');
  return [...new Set([...fromKernel, ...defaultRunDirSockets(env)])];
}

/**
 * Asks every candidate socket for its status, in parallel. Masters come back sorted by
 * app folder; sockets we may not connect to (another user's master) come back with
 * `error`; anything else that does not answer is dropped.
 *
 * @example
 * for (const m of await discoverMasters()) console.log(m.status?.pid, m.runDir);
 */
export async function discoverMasters(options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<FoundMaster[]> {
  const timeoutMs = options.timeoutMs ?? DISCOVER_TIMEOUT_MS;
  const found = await Promise.all(candidateSockets(options.env).map(async (socket): Promise<FoundMaster | undefined> => {
    const runDir = dirname(socket);
    try {
      return { runDir, status: (await controlRequest(runDir, 'status', {}, { timeoutMs })) as StatusSnapshot };
    } catch (err) {
      return isHitlessError(err, 'ERR_CONTROL_ACCESS') ? { runDir, error: 'permission denied (another user\'s master: run as that user or root)' } : undefined;
    }
  }));
  return sortMasters(found.filter((m): m is FoundMaster => m !== undefined));
}

/** Masters sorted by app folder (the run dir where it is not known). */
export function sortMasters(masters: FoundMaster[]): FoundMaster[] {
  const key = (m: FoundMaster): string => m.status?.app?.dir ?? m.appDir ?? m.runDir;
  return masters.sort((a, b) => key(a).localeCompare(key(b)));
}
