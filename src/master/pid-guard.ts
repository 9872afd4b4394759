/**
 * Where the master's PID must not change, so `hitless upgrade` (which replaces the master
 * by a new process) refuses with one line saying why and what to do instead:
 *
 * - the master is PID 1 (a container's init): the kernel ends the container with it;
 * - its parent is a container init (tini, docker-init, dumb-init, catatonit): those exit,
 *   and end the container, when their child does;
 * - supervisord runs it (it sets SUPERVISOR_ENABLED and SUPERVISOR_PROCESS_NAME): it tracks
 *   one PID per program and would take the old master's exit for a crash;
 * - it runs in a terminal (stdin, stdout or stderr is a TTY): the shell waits for the job
 *   and would see it end, while the new master is left without the terminal's job control;
 * - systemd runs it without NOTIFY_SOCKET (Type=simple or forking): systemd would take the
 *   old master's exit for the service's end and stop the cgroup, new master included;
 * - NOTIFY_SOCKET is set but `systemd-notify` is missing: systemd could not be told the new
 *   PID (MAINPID=; src/master/notify.ts).
 */
import { readFileSync } from 'node:fs';
import { isatty } from 'node:tty';

/** Parents that end a container when their child exits. */
export const CONTAINER_INITS: readonly string[] = ['tini', 'docker-init', 'dumb-init', 'catatonit'];

/** What the rules look at, read by {@link readPidFacts} (tests pass their own). */
export interface PidFacts {
  pid: number;
  ppid: number;
  /** The parent's command name (/proc/<ppid>/comm), when readable. */
  parentName: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Which of fds 0, 1, 2 are terminals. */
  ttys: number[];
  /** Whether `systemd-notify` is installed. */
  notifyProgram: boolean;
}

/**
 * Why the PID must stay here (one line: the reason, then what to do instead), or
 * undefined when an upgrade may replace the master.
 *
 * @example
 * pidMustStay({ ...facts, env: { SUPERVISOR_ENABLED: '1', SUPERVISOR_PROCESS_NAME: 'myapp' } });
 * // 'supervisord runs this master (program myapp) and follows its PID: …'
 */
export function pidMustStay(f: PidFacts): string | undefined {
  if (f.pid === 1) {
    return 'this master is PID 1 (a container\'s init), and the container ends when PID 1 exits; roll out a new image to upgrade hitless (docs/docker.md)';
  }
  if (f.parentName !== undefined && CONTAINER_INITS.includes(f.parentName)) {
    return `this master's parent is ${f.parentName} (pid ${f.ppid}), a container init that ends the container when its child exits; roll out a new image to upgrade hitless (docs/docker.md)`;
  }
  if (f.env.SUPERVISOR_ENABLED !== undefined || f.env.SUPERVISOR_PROCESS_NAME !== undefined) {
    const name = f.env.SUPERVISOR_PROCESS_NAME ?? '<program>';
    return `supervisord runs this master (program ${name}) and follows its PID: a new PID would look like a crash to it; use \`supervisorctl restart ${name}\` (connections close), or run hitless under systemd, where an upgrade keeps them (docs/systemd.md)`;
  }
  if (f.ttys.length > 0) {
    return `this master runs in a terminal (fd ${f.ttys.join(', ')} is a TTY), whose shell would see the job end while the new master lost the terminal; run it under a service manager (docs/systemd.md), or restart it with \`hitless stop\` and \`hitless start\``;
  }
  if (f.env.INVOCATION_ID !== undefined && f.env.NOTIFY_SOCKET === undefined) {
    return 'systemd runs this master without NOTIFY_SOCKET (Type=simple or forking) and would take the old master\'s exit for the end of the service; use Type=notify with NotifyAccess=all (docs/systemd.md)';
  }
  if (f.env.NOTIFY_SOCKET !== undefined && !f.notifyProgram) {
    return 'NOTIFY_SOCKET is set, but systemd-notify is not installed, so systemd could not be told the new master\'s PID; install systemd\'s tools, or restart the service instead';
  }
  return undefined;
}

/**
 * This process's facts for {@link pidMustStay}.
 *
 * @example
 * const why = pidMustStay(readPidFacts(process.env, onPath('systemd-notify')));
 */
export function readPidFacts(env: NodeJS.ProcessEnv, notifyProgram: boolean): PidFacts {
  let parentName: string | undefined;
  try {
    parentName = readFileSync(`/proc/${process.ppid}/comm`, 'utf8').trim();
  } catch {
    parentName = undefined; // not Linux, or the parent is gone
  }
  return { pid: process.pid, ppid: process.ppid, parentName, env, ttys: [0, 1, 2].filter((fd) => isatty(fd)), notifyProgram };
}
