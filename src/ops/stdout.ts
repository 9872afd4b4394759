/**
 * Where a running master's stdout goes, read from /proc (Linux): with `logs.mode:
 * "inherit"` worker output goes there, so `hitless logs` can show it when it is a file
 * (a detached master's output file) and otherwise say exactly where to look (the
 * master's terminal, a systemd unit's journal, the program that started it).
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { statFields } from '../core/procfs.js';

export type OutputTarget =
  | { kind: 'file'; path: string }
  | { kind: 'terminal'; path: string }
  | { kind: 'journal'; unit: string }
  /** `parent`: the program reading the pipe (`tee (pid 7158)`), else the master's parent. */
  | { kind: 'pipe'; parent: string | undefined }
  | { kind: 'unknown'; why: string };

/** The systemd service a process runs in, from its cgroup path (`…/myapp.service`). */
export function serviceOf(cgroup: string): string | undefined {
  for (const line of cgroup.split('\n')) {
    const path = line.split(':').slice(2).join(':');
    // The innermost service: user@1000.service is the user manager, not an app's unit.
    const units = [...path.matchAll(/\/([^/]+\.service)(?=\/|$)/g)].map((m) => m[1]!).filter((u) => !u.startsWith('user@'));
    if (units.length > 0) return units[units.length - 1];
  }
  return undefined;
}

/** `comm (pid N)` of process `pid`, if readable. */
function named(pid: number): string | undefined {
  try {
    return `${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()} (pid ${pid})`;
  } catch {
    return undefined;
  }
}

/**
 * The process that reads the pipe `link` (`pipe:[inode]`, the master's stdout): the one
 * holding it open read-only (`flags` in /proc/<pid>/fdinfo, access mode 0), which is not
 * always the master's parent (`hitless start | tee`: the parent is the shell, the reader
 * tee). Processes this user cannot look into are skipped.
 */
function pipeReader(master: number, link: string): string | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== master);
  } catch {
    return undefined;
  }
  for (const p of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${p}/fd/${fd}`) !== link) continue;
        const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${p}/fdinfo/${fd}`, 'utf8'))?.[1];
        if (flags !== undefined && (parseInt(flags, 8) & 3) === 0) return named(Number(p));
      } catch {
        // gone meanwhile, or not ours to read
      }
    }
  }
  return undefined;
}

/** The parent's command name (`supervisord`, `tini`, `containerd-shim`), if readable. */
function parentName(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return named(Number(statFields(stat)?.[1]));
  } catch {
    return undefined;
  }
}

/**
 * Where the stdout (fd 1) of process `pid` goes.
 *
 * @example
 * masterOutput(4242); // { kind: 'file', path: '/srv/app/hitless.log' }
 */
export function masterOutput(pid: number): OutputTarget {
  let link: string;
  try {
    link = readlinkSync(`/proc/${pid}/fd/1`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { kind: 'unknown', why: code === 'EACCES' || code === 'EPERM' ? 'the master runs as another user' : `cannot read /proc/${pid}/fd/1 (${code ?? 'error'})` };
  }
  if (link.startsWith('/dev/pts/') || link.startsWith('/dev/tty')) return { kind: 'terminal', path: link };
  if (link.startsWith('/')) {
    try {
      if (statSync(`/proc/${pid}/fd/1`).isFile()) return { kind: 'file', path: link.replace(/ \(deleted\)$/, '') };
    } catch {
      // fall through
    }
    return { kind: 'unknown', why: `its stdout is ${link}` };
  }
  // systemd connects a service's stdout to journald with a socket; supervisord, Docker and
  // shells use pipes (a master under supervisord may well sit in supervisor.service's cgroup).
  if (link.startsWith('socket:')) {
    try {
      const unit = serviceOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
      if (unit) return { kind: 'journal', unit };
    } catch {
      // no cgroup info: not under systemd as far as we can tell
    }
  }
  return { kind: 'pipe', parent: (link.startsWith('pipe:') ? pipeReader(pid, link) : undefined) ?? parentName(pid) };
}
