/**
 * Per-worker memory and CPU for `hitless status`, read from Linux /proc: resident memory
 * from /proc/<pid>/statm, CPU time from /proc/<pid>/stat, summed over the worker's process
 * tree (a forking server such as gunicorn serves from its arbiter's children). CPU% is the
 * share of one core used since the previous reading of each process (since it started, on
 * the first). Elsewhere (no /proc) the map is simply empty.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { childPids, statFields } from '../core/procfs.js';

/** One process's resource use. */
export interface ProcStat {
  rssBytes: number;
  /** Percent of one core (200 = two cores busy). */
  cpuPercent: number;
}

interface Sample { startTicks: number; cpuTicks: number; atMs: number }

/** Most descendants of one worker read per call. */
const MAX_TREE = 256;

/** Where /proc and the clock come from (tests pin them). */
export interface ProcSources {
  read?: (path: string) => string;
  /** The child pids of a process (default: /proc/<pid>/task/<tid>/children of each thread). */
  children?: (pid: number) => number[];
  now?: () => number;
  pageSize?: number;
  clockTicks?: number;
}

function sysconf(name: string, fallback: number): number {
  try {
    const v = Number(execFileSync('getconf', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim());
    return Number.isInteger(v) && v > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}

/**
 * /proc/<pid>/stat: "pid (comm) state ppid …"; comm may contain spaces and parentheses,
 * so fields are counted from the LAST ')'. utime/stime/starttime are fields 14/15/22.
 */
function parseStat(text: string): { cpuTicks: number; startTicks: number } | undefined {
  const f = statFields(text); // f[0] is field 3 (state)
  if (f === undefined) return undefined;
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const start = Number(f[19]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(start)) return undefined;
  return { cpuTicks: utime + stime, startTicks: start };
}

/** A reader keeping the previous sample of each pid; see {@link readProcStats}. */
export function createProcStatReader(sources: ProcSources = {}): (pids: number[]) => Map<number, ProcStat> {
  const read = sources.read ?? ((p: string) => readFileSync(p, 'utf8'));
  const now = sources.now ?? Date.now;
  let pageSize = sources.pageSize;
  let clockTicks = sources.clockTicks;
  const children = sources.children ?? childPids;
  const previous = new Map<number, Sample>();

  /** One process's RSS (bytes) and CPU (% of a core) since its previous reading; undefined when gone. */
  /** One call's state: the pids read, and /proc/uptime, read once for all of them. */
  interface Call { seen: Set<number>; uptime?: string }
  const one = (pid: number, call: Call): ProcStat | undefined => {
    const { seen } = call;
    let stat: ReturnType<typeof parseStat>;
    let statm: string;
    let uptime: string;
    try {
      stat = parseStat(read(`/proc/${pid}/stat`));
      statm = read(`/proc/${pid}/statm`);
      uptime = call.uptime ??= read('/proc/uptime');
    } catch {
      return undefined; // exited, or no /proc
    }
    if (!stat) return undefined;
    pageSize ??= sysconf('PAGESIZE', 4096);
    clockTicks ??= sysconf('CLK_TCK', 100);
    const at = now();
    seen.add(pid);
    const rssPages = Number(statm.split(' ')[1]);
    const prev = previous.get(pid);
    let cpuPercent: number;
    if (prev && prev.startTicks === stat.startTicks && at > prev.atMs) {
      cpuPercent = ((stat.cpuTicks - prev.cpuTicks) / clockTicks) / ((at - prev.atMs) / 1000) * 100;
    } else {
      // First reading (or the pid was reused): average since the process started.
      const aliveSec = Number(uptime.split(' ')[0]) - stat.startTicks / clockTicks;
      cpuPercent = aliveSec > 0 ? (stat.cpuTicks / clockTicks) / aliveSec * 100 : 0;
    }
    previous.set(pid, { startTicks: stat.startTicks, cpuTicks: stat.cpuTicks, atMs: at });
    return { rssBytes: Number.isFinite(rssPages) ? rssPages * pageSize : 0, cpuPercent: Math.max(0, cpuPercent) };
  };

  return (pids) => {
    const out = new Map<number, ProcStat>();
    const call: Call = { seen: new Set<number>() };
    const { seen } = call;
    for (const pid of pids) {
      const top = one(pid, call);
      if (top === undefined) continue;
      const sum = { ...top };
      // The worker's descendants, breadth first (bounded: a fork bomb must not stall status).
      const queue = children(pid);
      for (let i = 0; i < queue.length && i < MAX_TREE; i++) {
        const child = queue[i] as number;
        if (seen.has(child)) continue;
        const s = one(child, call);
        if (s === undefined) continue;
        sum.rssBytes += s.rssBytes;
        sum.cpuPercent += s.cpuPercent;
        queue.push(...children(child));
      }
      out.set(pid, { rssBytes: sum.rssBytes, cpuPercent: Math.round(sum.cpuPercent * 10) / 10 });
    }
    // Forget pids no longer asked about, so the map never grows with dead workers.
    for (const pid of previous.keys()) if (!seen.has(pid)) previous.delete(pid);
    return out;
  };
}

const defaultReader = createProcStatReader();

/**
 * Memory and CPU of the given processes. Pids that cannot be read (exited, not Linux)
 * are absent from the map. Pass every live worker pid on each call: pids left out are
 * forgotten, and their next CPU% is measured since process start.
 *
 * @example
 * ```ts
 * const stats = readProcStats(workers.map((w) => w.pid));
 * for (const w of workers) Object.assign(w, stats.get(w.pid)); // rssBytes, cpuPercent
 * ```
 */
export function readProcStats(pids: number[]): Map<number, ProcStat> {
  return defaultReader(pids);
}
