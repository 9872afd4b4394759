/**
 * Where a running master's stdout goes, read from /proc (Linux): with `logs.mode:
 * "inherit"` worker output goes there, so `hitless logs` can show it when it is a file
 * (a detached master's output file) and otherwise say exactly where to look (the
 * master's terminal, a systemd unit's journal, the program that started it).
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { statFields } from '../core/procfs.js';

export type OutputTarget =
  | { kind: 'file'; path: string }
  | { kind: 'terminal'; path: string }
  | { kind: 'journal'; unit: string }
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

/** The parent's command name (`supervisord`, `tini`, `containerd-shim`), if readable. */
function parentName(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(statFields(stat)?.[1]);
    return `${readFileSync(`/proc/${ppid}/comm`, 'utf8').trim()} (pid ${ppid})`;
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
  return { kind: 'pipe', parent: parentName(pid) };
}
