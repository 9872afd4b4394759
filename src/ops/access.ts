/**
 * Can the worker user reach what it is asked to run? After a privilege drop (config
 * `user`/`group`) a worker that cannot enter the app folder dies with the runtime's own
 * message ("Cannot find module …" and a stack). This check runs in the master before each
 * generation starts and says it in one line: which user, which path, the fix.
 *
 * Permission bits only (owner, group, other), as the kernel applies them to a process with
 * this uid and gid and no supplementary groups (Node's spawn clears them). ACLs are not
 * read: a path they would open is reported, and the message says how to check.
 */
import { statSync, type Stats } from 'node:fs';
import { delimiter, isAbsolute, join, resolve, sep } from 'node:path';
import { HitlessError } from '../errors.js';

export interface Identity {
  uid: number;
  gid: number;
  name: string;
}

const R = 4;
const X = 1;

function allowed(st: Stats, who: Identity, want: number): boolean {
  if (who.uid === 0) return want !== X || st.isDirectory() || (st.mode & 0o111) !== 0;
  const bits = st.uid === who.uid ? (st.mode >> 6) & 7 : st.gid === who.gid ? (st.mode >> 3) & 7 : st.mode & 7;
  return (bits & want) === want;
}

/** The first path on the way to `path` that `who` cannot pass (`want`: R and/or X on the target). */
function blocker(path: string, who: Identity, want: number): { at: string; st: Stats; need: string } | undefined {
  const parts = resolve(path).split(sep).filter(Boolean);
  let at: string = sep;
  for (const [i, part] of parts.entries()) {
    let st: Stats;
    try {
      st = statSync(at);
    } catch {
      return undefined; // a missing path is the command's own error to report
    }
    if (!allowed(st, who, X)) return { at, st, need: 'enter' };
    at = join(at, part);
    if (i === parts.length - 1) {
      try {
        st = statSync(at);
      } catch {
        return undefined;
      }
      if (!allowed(st, who, want)) return { at, st, need: want & X ? (st.isDirectory() ? 'enter' : 'execute') : 'read' };
    }
  }
  return undefined;
}

function which(program: string, cwd: string, pathEnv: string | undefined): string | undefined {
  if (program.includes('/')) return resolve(cwd, program);
  for (const dir of (pathEnv ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, program);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Throws ERR_COMMAND_NOT_FOUND when the workers' folder is missing (or a file): spawn would
 * fail with an ENOENT that names the program (or setpriv), not the folder.
 *
 * @example
 * checkWorkerFolder('/srv/app/current');
 */
export function checkWorkerFolder(cwd: string): void {
  let st: Stats | undefined;
  try {
    st = statSync(cwd);
  } catch {
    // missing (or a file on the way): said below
  }
  if (st?.isDirectory() === true) return;
  throw new HitlessError('ERR_COMMAND_NOT_FOUND', `the workers' folder ${cwd} ${st ? 'is not a folder' : 'does not exist'} ("cwd", --cwd): create it, or point "cwd" at the app's folder`, {
    details: { cwd },
  });
}

/**
 * Throws ERR_WORKER_ACCESS when `who` cannot enter `cwd`, execute the program, or read an
 * argument that names an existing file.
 *
 * @example
 * checkWorkerAccess({ uid: 65534, gid: 65534, name: 'nobody' }, '/srv/app', ['node', 'server.js'], process.env.PATH);
 */
export function checkWorkerAccess(who: Identity, cwd: string, command: string[], pathEnv: string | undefined): void {
  const [program = '', ...args] = command;
  const checks: { path: string; want: number }[] = [{ path: cwd, want: R | X }];
  const exe = which(program, cwd, pathEnv);
  if (exe) checks.push({ path: exe, want: X });
  for (const arg of args) {
    if (arg.startsWith('-') || arg.length === 0) continue;
    const path = isAbsolute(arg) ? arg : resolve(cwd, arg);
    try {
      if (statSync(path).isFile()) checks.push({ path, want: R });
    } catch {
      // not a file: an ordinary argument
    }
  }
  for (const { path, want } of checks) {
    const b = blocker(path, who, want);
    if (!b) continue;
    const mode = (b.st.mode & 0o777).toString(8).padStart(4, '0');
    const fix = b.need === 'enter'
      ? `let that user enter it (chmod o+x ${b.at}) or move the app to a folder it can reach, e.g. /srv/<app>`
      : `make it ${b.need === 'read' ? 'readable' : 'executable'} by that user (chmod o+${b.need === 'read' ? 'r' : 'x'} ${b.at})`;
    throw new HitlessError(
      'ERR_WORKER_ACCESS',
      `workers run as user "${who.name}" (uid ${who.uid}), which cannot ${b.need} ${b.at}${b.at === path ? '' : ` on the way to ${path}`} (mode ${mode}, owner uid ${b.st.uid}): ${fix}`,
      { details: { user: who.name, path, blocked: b.at } },
    );
  }
}


/**
 * Throws ERR_WORKER_ACCESS when `who` cannot read `path`, a file hitless itself gives the
 * workers (the preload for unmodified apps): `what` names it, `fix` says what to do.
 *
 * @example
 * checkReadableBy(who, '/opt/hitless/build/src/preload/index.js', 'the preload', 'set "preload": false');
 */
export function checkReadableBy(who: Identity, path: string, what: string, fix: string): void {
  const b = blocker(path, who, R);
  if (!b) return;
  const mode = (b.st.mode & 0o777).toString(8).padStart(4, '0');
  throw new HitlessError(
    'ERR_WORKER_ACCESS',
    `workers run as user "${who.name}" (uid ${who.uid}), which cannot ${b.need} ${b.at}${b.at === path ? '' : ` on the way to ${path}`} (${what}; mode ${mode}, owner uid ${b.st.uid}): ${fix}`,
    { details: { user: who.name, path, blocked: b.at } },
  );
}
