/**
 * The real seams of a master upgrade (upgrade.ts): the clock, the supervisor, the PID guard
 * (pid-guard.ts), what the new master is started with (upgrade-launch.ts) and how (peer.ts),
 * what systemd is told (notify.ts), and the cleanup after a failed one. master.ts composes
 * it; the unit tests pass their own seams.
 */
import { realHost } from '../core/process.js';
import type { Supervisor } from '../core/supervisor.js';
import { removeStagedSocket } from '../config/rundir.js';
import type { MetricTotals } from '../ops/counters.js';
import type { ListenerSet } from './listeners.js';
import { NOTIFY_PROGRAM, onPath } from './notify-send.js';
import type { ServiceNotifier } from './notify.js';
import { spawnPeer } from './peer.js';
import type { ScaleOverride } from './peer-protocol.js';
import type { ReloadOutcome } from '../core/types.js';
import { pidMustStay, readPidFacts } from './pid-guard.js';
import { upgradeLaunch } from './upgrade-launch.js';
import { Upgrader } from './upgrade.js';

export interface MasterUpgraderOptions {
  supervisor: Supervisor;
  listeners: ListenerSet;
  notifier: ServiceNotifier;
  version: string;
  /** `hitless start`'s arguments (undefined: a master run programmatically cannot upgrade). */
  startArgv: string[] | undefined;
  /** This master read no config file (its new master gets `--no-config`). */
  flagsOnly: boolean;
  /** The path this master was started from (default: process.argv[1]). */
  startedFrom: string | undefined;
  runDir: string;
  limits(): { readyTimeout: number; drainTimeout: number; stayReady?: number };
  scale(): ScaleOverride | undefined;
  /** Stops watch, fetch and metrics (Parts.yieldTriggers): the upgrade's point of no return is passed. */
  yieldParts(): Promise<{ metrics?: MetricTotals }>;
  /** A reload as any other (the master's handle): one held during a failed upgrade runs so. */
  reload(reason: string): Promise<ReloadOutcome>;
}

/**
 * The Upgrader of a real master.
 *
 * @example
 * const upgrader = masterUpgrader({ supervisor, listeners, notifier, version, startArgv, startedFrom, runDir, limits, scale, yieldParts, reload });
 * await upgrader.run({ reason: 'SIGUSR2' });
 */
export function masterUpgrader(o: MasterUpgraderOptions): Upgrader {
  const { notifier } = o;
  return new Upgrader({
    host: realHost,
    supervisor: o.supervisor,
    pid: process.pid,
    version: o.version,
    node: process.version,
    limits: o.limits,
    guard: () => pidMustStay(readPidFacts(process.env, onPath(NOTIFY_PROGRAM))),
    prepare: async (exec) => {
      const { fds, sockets } = o.listeners.inventory();
      const ctx = {
        startedFrom: o.startedFrom ?? process.argv[1], startArgv: o.startArgv, cwd: process.cwd(), env: process.env,
        execPath: process.execPath, execArgv: process.execArgv, inherited: sockets.filter((s) => s.inherited).length,
        flagsOnly: o.flagsOnly,
      };
      return { ...(await upgradeLaunch(exec, ctx, fds)), sockets };
    },
    spawn: spawnPeer,
    notices: {
      upgrading: (text) => notifier.reloading(text),
      resumed: (text) => notifier.ready(text),
      handedOver: (pid, text) => notifier.mainPid(pid, text),
    },
    yieldParts: o.yieldParts,
    scale: o.scale,
    cleanup: (pid) => removeStagedSocket(o.runDir, pid),
    reload: o.reload,
  });
}
