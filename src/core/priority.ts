/**
 * Boot priority (issue 23): a worker that starts while others serve runs at a lower CPU
 * scheduling priority (a higher nice value) until READY, then gets the normal one back. On
 * a busy machine the new generation's boot (a Node process: tens of ms of CPU; a framework
 * app: a second or more) then takes the CPU the serving workers leave idle, instead of the
 * CPU their requests wait for.
 *
 * Lowering a priority is always allowed; raising it back is not: it needs CAP_SYS_NICE
 * (root has it, unless a container dropped it) or an RLIMIT_NICE that reaches the normal
 * value again (systemd `LimitNICE=+0`, `ulimit -e 20`). A master without either does not
 * lower at all ({@link planBootPriority}): a worker it could not restore would serve at the
 * lower priority after the switch, and every later generation would boot at the same
 * priority as the one it replaces, which buys nothing and deprioritises the app against the
 * rest of the machine.
 *
 * Linux keeps the nice value per thread: setpriority(PRIO_PROCESS, pid) changes the one
 * thread whose id is pid, and a new thread copies its creator's. So the real host sets every
 * thread of the worker and of the processes it started ({@link setTreeNice}): lowered right
 * after spawn, before Node starts its threads, every thread is low; restored at READY,
 * every thread (V8's, libuv's pool, the app's children) is back.
 *
 * Where the kernel groups CPU time by session first (autogroup: CONFIG_SCHED_AUTOGROUP with
 * /proc/sys/kernel/sched_autogroup_enabled = 1, the default of most distributions' kernels),
 * a nice value only ranks a thread against the others of its own session, and each worker
 * is a session of its own (it is started detached, for its process group). A booting worker
 * at nice 19 then still gets as much CPU as a serving one (measured: two busy loops in two
 * sessions, one at nice 19, share a CPU 50/50). So the real host also sets the worker's
 * session group to the same offset ({@link workerNiceSetter}): /proc/<pid>/autogroup, which
 * takes a nice value for the whole session. Setting it more often than every 100 ms needs
 * CAP_SYS_ADMIN (the kernel answers EAGAIN otherwise), and a restore that failed would leave
 * a worker serving low, so a master without CAP_SYS_ADMIN leaves the groups alone and says
 * once that boot priority cannot rank sessions here ({@link planBootPriority}).
 */
import { writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { childPids, readOr, sessionOf, threadIds } from './procfs.js';
import type { MasterEvent } from './types.js';

/** Nice values, lowest (most CPU) to highest (least), as Linux defines them. */
export const NICE_MIN = -20;
export const NICE_MAX = 19;
/** CAP_SYS_NICE's and CAP_SYS_ADMIN's bits in the capability sets (linux/capability.h). */
const CAP_SYS_NICE = 23n;
const CAP_SYS_ADMIN = 21n;

/** The nice values a new worker boots at and serves at. */
export interface BootPriority {
  /** While it starts (until READY). */
  booting: number;
  /** From READY on: the master's own nice value, which workers inherit otherwise. */
  serving: number;
}

/** What the master's process may do with priorities. */
export interface PriorityFacts {
  /** The master's own nice value (its workers inherit it). */
  nice: number;
  /** The lowest nice value it may give a process: -20 with CAP_SYS_NICE, else what RLIMIT_NICE allows. */
  floor: number;
  /**
   * Whether the kernel shares CPU time between sessions first (autogroup) and whether this
   * process may set a session's share at any moment (CAP_SYS_ADMIN): 'off' (no autogroup, or
   * not Linux; nice values rank every thread), 'settable', or 'fixed'. Absent: 'off'.
   */
  sessions?: 'off' | 'settable' | 'fixed';
}

/**
 * The lowest nice value a process may set, from its /proc/self/status and /proc/self/limits
 * text: -20 with CAP_SYS_NICE in its effective set, else 20 - RLIMIT_NICE's soft limit
 * (setrlimit(2)), never below -20 and at most 20 (only raising the nice value is allowed).
 *
 * @example
 * niceFloor('CapEff:\t0000000000800000\n', ''); // -20
 * niceFloor('CapEff:\t0000000000000000\n', 'Max nice priority  20  20\n'); // 0
 */
export function niceFloor(status: string, limits: string): number {
  if (hasCapability(status, CAP_SYS_NICE)) return NICE_MIN;
  const soft = /^Max nice priority\s+(\S+)/m.exec(limits)?.[1];
  if (soft === undefined) return 20;
  const rlim = soft === 'unlimited' ? 40 : Number(soft);
  return Number.isFinite(rlim) ? Math.max(NICE_MIN, 20 - Math.min(40, Math.max(0, rlim))) : 20;
}

/** True when the effective set in /proc/<pid>/status text has capability `bit`. */
function hasCapability(status: string, bit: bigint): boolean {
  const cap = /^CapEff:\s*([0-9a-f]+)$/im.exec(status)?.[1];
  return cap !== undefined && ((BigInt(`0x${cap}`) >> bit) & 1n) === 1n;
}

/**
 * How the kernel ranks sessions, from /proc/sys/kernel/sched_autogroup_enabled's text ('' when
 * the file is missing) and this process's /proc/self/status text.
 *
 * @example
 * sessionGroups('1\n', 'CapEff:\t000001ffffffffff\n'); // 'settable' (root)
 * sessionGroups('0\n', 'CapEff:\t0000000000000000\n'); // 'off'
 */
export function sessionGroups(autogroupEnabled: string, status: string): 'off' | 'settable' | 'fixed' {
  if (autogroupEnabled.trim() !== '1') return 'off';
  return hasCapability(status, CAP_SYS_ADMIN) ? 'settable' : 'fixed';
}

/**
 * This process's priority facts (Linux: /proc; elsewhere the floor is unknown and taken as
 * "may not raise", so nothing is lowered).
 *
 * @example
 * const facts = readPriorityFacts(); // { nice: 0, floor: -20, sessions: 'settable' } as root
 */
export function readPriorityFacts(): PriorityFacts {
  const status = readOr('/proc/self/status');
  return {
    nice: getPriority(0),
    floor: niceFloor(status, readOr('/proc/self/limits')),
    sessions: sessionGroups(readOr('/proc/sys/kernel/sched_autogroup_enabled'), status),
  };
}

/**
 * The boot priority for `bootNice` (0: off) given what the master may do: `plan` when it
 * applies, or a `note` saying why not (and what would make it apply).
 *
 * @example
 * planBootPriority(10, { nice: 0, floor: -20 }); // { plan: { booting: 10, serving: 0 } }
 * planBootPriority(10, { nice: 0, floor: 20 });  // { note: 'bootNice 10 not applied: …' }
 */
export function planBootPriority(bootNice: number, facts: PriorityFacts): { plan?: BootPriority; note?: string } {
  if (bootNice <= 0) return {};
  const serving = facts.nice;
  const booting = Math.min(NICE_MAX, serving + bootNice);
  if (booting === serving) return { note: `bootNice ${bootNice} not applied: the master already runs at nice ${serving}, the lowest priority` };
  if (facts.floor > serving) {
    return {
      note: `bootNice ${bootNice} not applied: the master may not raise a worker's priority back to nice ${serving} at READY ` +
        `(that needs CAP_SYS_NICE, which root has, or RLIMIT_NICE of at least ${20 - serving}: systemd LimitNICE=${serving >= 0 ? '+' : ''}${serving}, ulimit -e ${20 - serving}); ` +
        'new workers boot at the normal priority',
    };
  }
  const plan = { booting, serving };
  if (facts.sessions !== 'fixed') return { plan };
  return {
    plan,
    note: `bootNice ${bootNice}: this kernel shares CPU between sessions first (autogroup) and every worker is a session of its own, ` +
      'so a booting worker still gets as much CPU as a serving one; the master needs CAP_SYS_ADMIN to lower a session ' +
      '(run it as root, or with AmbientCapabilities=CAP_SYS_ADMIN), or turn autogroup off (sysctl kernel.sched_autogroup_enabled=0)',
  };
}

const gone = (err: unknown): boolean => (err as { code?: string; info?: { code?: string } }).info?.code === 'ESRCH' ||
  (err as { code?: string }).code === 'ESRCH';

/**
 * Sets the nice value of every thread of `pid` and of every process it started, and theirs.
 * A thread or process that is gone is skipped; any other failure (EACCES: raising without
 * the privilege) is thrown after trying the rest.
 *
 * @example
 * setTreeNice(worker.pid, 10); // booting
 * setTreeNice(worker.pid, 0);  // ready
 */
export function setTreeNice(pid: number, nice: number): void {
  let failure: unknown;
  let seen = new Set<number>();
  const visit = (p: number): void => {
    if (seen.has(p)) return;
    seen.add(p);
    for (const tid of threadIds(p)) {
      try {
        setPriority(tid, nice);
      } catch (err) {
        if (!gone(err)) failure ??= err;
      }
    }
    for (const c of childPids(p)) visit(c);
  };
  visit(pid);
  // Twice: a process forked while its parent was being set took the parent's old value and
  // may not have been listed among the children yet (seen with gunicorn's arbiter forking its
  // workers as READY came, on a busy machine). Forked after the parent was set, it has the
  // new one; by the second pass every earlier fork is listed.
  seen = new Set<number>();
  visit(pid);
  if (failure !== undefined) throw failure;
}

/**
 * Sets the autogroup nice value of the session `pid` leads (/proc/<pid>/autogroup). A
 * process that leads no session shares its group with others (the master's, for one) and is
 * left alone; one that is gone is skipped; any other failure is thrown.
 *
 * @example
 * setSessionNice(worker.pid, 10);
 */
export function setSessionNice(pid: number, nice: number): void {
  if (sessionOf(pid) !== pid) return;
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch (err) {
    if (!gone(err) && (err as { code?: string }).code !== 'ENOENT') throw err;
  }
}

/**
 * The real host's setPriority for `facts`: every thread and process of the worker
 * ({@link setTreeNice}) and, where sessions are ranked first and the master may set theirs,
 * the worker's session, at the same distance from the master's nice value (so a serving
 * worker's session is back at 0, where every new session starts).
 *
 * @example
 * const set = workerNiceSetter(readPriorityFacts());
 * set(worker.pid, 10); // booting: its threads at 10, and its session at 10 under autogroup
 */
export function workerNiceSetter(facts: PriorityFacts): (pid: number, nice: number) => void {
  const tree = settledTreeNice();
  if (facts.sessions !== 'settable') return tree;
  return function setTreeAndSessionNice(pid, nice) {
    tree(pid, nice);
    setSessionNice(pid, Math.min(NICE_MAX, Math.max(NICE_MIN, nice - facts.nice)));
  };
}

/** When {@link settledTreeNice} sets a tree again: after forks that were under way. */
const SETTLE_SWEEPS_MS = [50, 250, 1000];

/**
 * {@link setTreeNice}, then again a few times shortly after, with the value last asked for
 * that pid. A fork under way while the tree is set copies the parent's old value and joins
 * the parent's children only later, after both passes listed them (seen: gunicorn's arbiter
 * forks its workers right after it says READY, so one stayed at the boot priority on a busy
 * machine). The later sweeps set such a child too; a newer value for the pid (READY after a
 * lowering) replaces an older one, never the reverse. Failures of the later sweeps (the
 * process gone) are dropped: the first call reported what mattered.
 */
function settledTreeNice(): (pid: number, nice: number) => void {
  const latest = new Map<number, number>();
  return function setTreeNiceSettled(pid, nice) {
    latest.set(pid, nice);
    setTreeNice(pid, nice);
    SETTLE_SWEEPS_MS.forEach((ms, i) => {
      setTimeout(() => {
        if (latest.get(pid) !== nice) return;
        try {
          setTreeNice(pid, nice);
        } catch {
          // gone, or no longer ours to set: the first call reported it
        }
        if (i === SETTLE_SWEEPS_MS.length - 1) latest.delete(pid);
      }, ms).unref();
    });
  };
}

/**
 * Lowers a process that never gets its priority back (the warm-up's client): every thread of
 * it to `increment` above the master's nice value and, where sessions are ranked first, the
 * session it leads by `increment`. Lowering needs no privilege; without CAP_SYS_ADMIN the
 * kernel takes one session write per 100 ms system-wide, and a refused one leaves the
 * session where it was (the threads are lowered either way).
 *
 * @example
 * lowerForGood(client.pid, 10, readPriorityFacts());
 */
export function lowerForGood(pid: number, increment: number, facts: PriorityFacts): void {
  try {
    setTreeNice(pid, Math.min(NICE_MAX, facts.nice + increment));
    if (facts.sessions === 'settable' || facts.sessions === 'fixed') setSessionNice(pid, Math.min(NICE_MAX, increment));
  } catch {
    // Refused (EAGAIN: another session was set within 100 ms): it runs as it was.
  }
}

/** What {@link BootPriorityControl} needs of a worker. */
interface BootingWorker {
  readonly pid: number | undefined;
  readonly generation: number;
  readonly slot: number;
}

/** The event a failed restore reports. */
export type PriorityFailure = Extract<MasterEvent, { type: 'worker-priority' }>;

/**
 * The supervisor's side: lowers a worker that boots beside a serving generation and
 * restores it at READY. After a restore fails it lowers no more (for the master's life): a
 * host that refused once will refuse again, and a worker left low would serve low.
 *
 * @example
 * const nice = control.lower(worker, spec.bootPriority);         // 10, or undefined
 * const back = control.restore(worker, spec.bootPriority, emit);  // 0, or undefined (reported)
 */
export class BootPriorityControl {
  readonly #host: { setPriority?(pid: number, nice: number): void };
  #off = false;

  constructor(host: { setPriority?(pid: number, nice: number): void }) {
    this.#host = host;
  }

  /** The nice value a worker booting now starts at (LaunchSpec.nice), or undefined: not lowered. */
  startAt(plan: BootPriority | undefined): number | undefined {
    return plan === undefined || this.#off || this.#host.setPriority === undefined ? undefined : plan.booting;
  }

  /** Lowers `w` to `plan.booting`; the nice value set, or undefined when it was not lowered. */
  lower(w: BootingWorker, plan: BootPriority | undefined): number | undefined {
    const nice = this.startAt(plan);
    if (nice === undefined || w.pid === undefined) return undefined;
    try {
      this.#host.setPriority!(w.pid, nice);
      return nice;
    } catch {
      // Gone already, or the host refused even lowering: it boots at the normal priority.
      return undefined;
    }
  }

  /** Gives `w` its serving priority back; on failure reports it through `emit` and returns undefined. */
  restore(w: BootingWorker, plan: BootPriority | undefined, emit: (e: PriorityFailure) => void): number | undefined {
    if (plan === undefined || w.pid === undefined || this.#host.setPriority === undefined) return undefined;
    try {
      this.#host.setPriority(w.pid, plan.serving);
      return plan.serving;
    } catch (err) {
      this.#off = true;
      emit({ type: 'worker-priority', generation: w.generation, slot: w.slot, pid: w.pid, nice: plan.booting, error: err instanceof Error ? err.message : String(err) });
      return undefined;
    }
  }
}
