/**
 * Which process holds an address `hitless start` could not bind, when no running master
 * claims it (occupied.ts asks those first). The case that needs it: a worker that ignores
 * its stop signal outlives a master killed with SIGKILL (its parent-death signal is that
 * same stop signal), keeps serving the old version with no master, and the next start
 * failed with a bare "another process listens there" (h21 F8).
 *
 * Linux only, and only what this user may see: the listening socket's inode comes from
 * /proc/net/tcp{,6} or /proc/net/unix, the process from the `socket:[inode]` links under
 * /proc/<pid>/fd, and a hitless worker is known by the environment the master gives it
 * (HITLESS_MASTER_PID, HITLESS_GENERATION: core/spec.ts).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import type { ListenerSpec } from '../config/types.js';
import { commandLine, readOr, statFields } from '../core/procfs.js';
import { unixTableRows } from '../control/discover.js';
import { tableRows, TCP_TABLES } from './socket-table.js';

const WILDCARD = new Set(['', '0.0.0.0', '::']);

/** The processes found holding an address (a generation's workers all hold its socket). */
export interface PortHolder {
  /** Every process of this user's view holding the socket, lowest first. */
  pids: number[];
  /** The first one's command line, joined with spaces ('' when unreadable). */
  command: string;
  /** Set when the first one's environment says it is a hitless worker. */
  worker?: {
    masterPid: number;
    generation: string;
    /** The master is gone: it is not the worker's parent any more. */
    orphan: boolean;
    /** The worker's working folder (the app folder or release it serves), when readable. */
    cwd?: string;
  };
}

/** What to read; tests pass texts and a fake /proc. */
export interface ProcView {
  tcpTables: string[];
  unixTable: string;
  /** Every pid in /proc. */
  pids(): number[];
  /** The targets of /proc/<pid>/fd/* (empty when unreadable). */
  fdLinks(pid: number): string[];
  environ(pid: number): string;
  stat(pid: number): string;
  cmdline(pid: number): string[] | undefined;
  cwd(pid: number): string | undefined;
}

/** This machine's /proc. */
export function liveProc(): ProcView {
  const tryOr = <T>(fn: () => T, or: T): T => {
    try {
      return fn();
    } catch {
      return or;
    }
  };
  return {
    tcpTables: TCP_TABLES.map(readOr),
    unixTable: readOr('/proc/net/unix'),
    pids: () => tryOr(() => readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number), []),
    fdLinks: (pid) => tryOr(() => readdirSync(`/proc/${pid}/fd`).map((fd) => tryOr(() => readlinkSync(`/proc/${pid}/fd/${fd}`), '')), []),
    environ: (pid) => readOr(`/proc/${pid}/environ`),
    stat: (pid) => readOr(`/proc/${pid}/stat`),
    cmdline: commandLine,
    cwd: (pid) => tryOr(() => readlinkSync(`/proc/${pid}/cwd`), undefined),
  };
}

/** The inodes of the sockets listening where `spec` asks to. */
export function listeningInodes(spec: ListenerSpec, view: Pick<ProcView, 'tcpTables' | 'unixTable'>): Set<string> {
  if (spec.kind === 'unix') {
    return new Set(unixTableRows(view.unixTable).filter((r) => r.listening && r.path === spec.path).map((r) => r.inode));
  }
  return new Set(view.tcpTables.flatMap(tableRows)
    .filter((r) => r.listening && r.port === spec.port && (r.host === spec.host || WILDCARD.has(r.host) || WILDCARD.has(spec.host)))
    .map((r) => r.inode));
}

/**
 * The processes holding the address `spec` asks for, when this user can see them.
 *
 * @example
 * findPortHolder({ kind: 'tcp', host: '127.0.0.1', port: 8080, … });
 * // { pids: [28687, 28688], command: 'node raw.js', worker: { masterPid: 28600, generation: '1', orphan: true, cwd: '/srv/app' } }
 */
export function findPortHolder(spec: ListenerSpec, view: ProcView = liveProc()): PortHolder | undefined {
  const inodes = listeningInodes(spec, view);
  if (inodes.size === 0) return undefined;
  const links = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const pids = view.pids().filter((p) => p !== process.pid && view.fdLinks(p).some((l) => links.has(l))).sort((a, b) => a - b);
  const pid = pids[0];
  if (pid === undefined) return undefined;
  const holder: PortHolder = { pids, command: (view.cmdline(pid) ?? []).join(' ') };
  const env = new Map(view.environ(pid).split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const masterPid = Number(env.get('HITLESS_MASTER_PID'));
  if (Number.isInteger(masterPid) && masterPid > 0) {
    // A dead master's workers are re-parented (to init or a subreaper); a live one is the
    // parent of at least one of them (the others may be a worker's own children).
    const orphan = !pids.some((p) => Number(statFields(view.stat(p))?.[1]) === masterPid);
    const cwd = view.cwd(pid);
    holder.worker = { masterPid, generation: env.get('HITLESS_GENERATION') ?? '?', orphan, ...(cwd === undefined ? {} : { cwd }) };
  }
  return holder;
}

/** A command line for a message: at most 80 characters. */
function shortCommand(command: string): string {
  return command.length <= 80 ? command : `${command.slice(0, 79)}…`;
}

/**
 * What to say about `holder` after "cannot listen on <address>: EADDRINUSE ", in parentheses.
 *
 * @example
 * describePortHolder({ pids: [28687], command: 'node raw.js', worker: { masterPid: 28600, generation: '1', orphan: true, cwd: '/srv/app' } });
 * // '(held by pid 28687, `node raw.js`, a worker (generation 1) left in /srv/app by hitless master pid 28600, which is gone: …)'
 */
export function describePortHolder(holder: PortHolder): string {
  const { pids } = holder;
  const many = pids.length > 1;
  const them = many ? 'them' : 'it';
  const who = `${many ? 'pids' : 'pid'} ${pids.join(', ')}${holder.command ? `, \`${shortCommand(holder.command)}\`` : ''}`;
  const w = holder.worker;
  if (w === undefined) return `(another process listens there: ${who}; stop ${them} or choose another port)`;
  const where = w.cwd === undefined ? '' : ` in ${w.cwd}`;
  const workers = many ? `workers of generation ${w.generation}` : `a worker of generation ${w.generation}`;
  if (!w.orphan) {
    return `(held by ${who}, ${workers} of the running hitless master pid ${w.masterPid}${where}: stop that master, \`kill -TERM ${w.masterPid}\`, or choose another address)`;
  }
  return `(held by ${who}, ${workers} left${where} by hitless master pid ${w.masterPid}, which is gone: ` +
    `a worker that ignores its stop signal outlives a killed master, as that signal is also what it gets when the master dies; ` +
    `${many ? 'they still serve' : 'it still serves'} the old version: kill ${them} with \`kill -KILL ${pids.join(' ')}\` and start again)`;
}
