/**
 * The master process, composed: hold the sockets, run the supervisor, answer the control
 * socket, map signals to actions (signals.ts), speak systemd's notify protocol when given
 * NOTIFY_SOCKET (notify.ts), and start the optional triggers (watch, fetch) and
 * operations parts (log files, metrics) only when configured (parts.ts; each is imported
 * lazily, so a plain `hitless start` loads none of their dependencies). Everything that
 * asks for a reload goes through the Reconfigurer (reconfigure.ts), which reads the
 * configuration again first.
 *
 * A master can be replaced by a new one (`hitless upgrade`, SIGUSR2): the old side is
 * upgrade.ts, the new side successor.ts; a master started that way adopts the sockets and
 * state the old one hands over instead of binding (see {@link runMaster}).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { HitlessError } from '../errors.js';
import { adoptListeners, inheritedListeners, openListeners, type ListenerSet } from './listeners.js';
import { collectGarbage } from './gc.js';
import { createLogger, logEvent, type Logger } from '../core/logger.js';
import { Supervisor } from '../core/supervisor.js';
import { realHost } from '../core/process.js';
import { createProcStatReader } from './procstat.js';
import { specFromConfig, type GenerationSpec } from '../core/spec.js';
import { checkReadableBy, checkWorkerAccess, checkWorkerFolder } from '../ops/access.js';
import type { MasterConfig } from '../config/types.js';
import type { ListenerStatus, MasterEvent, MasterHandle } from '../core/types.js';
import { Identities } from './identity.js';
import { compileCacheFolder } from './compile-cache.js';
import { createWarmer } from './warmup.js';
import { lowerForGood, planBootPriority, readPriorityFacts, setTreeNice } from '../core/priority.js';
import { COMPILE_CACHE_DIR, DEFAULT_BOOT_NICE } from '../config/defaults.js';
import { preloadEnv, preloadUrl } from './preload-env.js';
import { Parts } from './parts.js';
import { nameMetricsHolder, nameTheHolder, refuseSecondMaster } from './occupied.js';
import { openBeacon } from '../control/beacon.js';
import { ReadyWatch } from './ready-wait.js';
import { ListenerWatch, stoppedText } from './listener-watch.js';
import { SOCKET_FILE_CHECK_MS, SocketFileWatch } from './socket-files.js';
import { Reconfigurer, type ConfigSource, type ReconfigurableMaster } from './reconfigure.js';
import { handleSignals } from './signals.js';
import { SERVICE_MANAGER_VARS, ServiceNotifier, statusLine } from './notify.js';
import { joinUpgrade, Successor, tellOldMaster } from './successor.js';
import { masterUpgrader } from './upgrade-seams.js';
import type { ControlServer } from '../control/server.js';
import { removeEmptyRunDir, stagingSocketPath } from '../config/rundir.js';
import { requireListenAddress } from '../config/listen.js';
import { refuseTakenPidFile, removePidFile, writePidFile } from './pidfile.js';
import { prepareFolder, prepareOutputFile } from '../config/output-file.js';
import { LOG_FILE_NAME } from '../ops/logfiles.js';
import { processEnded, waitForExit } from '../process-alive.js';

/** How long a new master whose channel to the old master closed waits for that master's end before it takes the service. */
const ORPHAN_CHECK_MS = 5_000;

interface Closable {
  close(): Promise<void> | void;
}


export const version: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/**
 * HITLESS_HANDOVER_WINDOW: connections an old worker may have in transit at once, instead of
 * the measured default (1); HITLESS_HANDOVER_SPREAD: how much the hand-over is spread (0: full
 * speed); HITLESS_HANDOVER_LEFT=0: the pace ignores how many connections an old worker has
 * left (and the new workers take them round robin); HITLESS_HANDOVER_FILL=0: the new workers
 * take them round robin instead of in turn; HITLESS_FORK_NICE=0: a booting worker is lowered only after its fork;
 * HITLESS_SESSION_NICE=0: a booting worker's session (autogroup) is not lowered with its
 * threads; HITLESS_CANARY_LEND=0: a starved canary is lent nothing more. Not settings: the benchmarks use them to show what the defaults buy.
 */
function handoverWindowFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const n = Number(env.HITLESS_HANDOVER_WINDOW);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** True when util-linux's setpriv can give workers a parent-death signal. */
function hasSetpriv(): boolean {
  return spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A socket's address as messages name it: systemd's where it is bound, or "from systemd" ("fd:3" says nothing). */
function messageAddress(l: ListenerStatus): string {
  return l.boundTo ?? (l.inherited && l.address.startsWith('fd:') ? 'from systemd' : l.address);
}

/** How the master ended. */
export interface MasterResult {
  /** The process exit code: 0 after a graceful stop or a completed upgrade, 1 when the first generation could not start. */
  code: number;
  /**
   * True after this master handed over to a new one: the process must end now, without
   * Node's teardown, which closes every handle and so would unlink the unix socket files
   * (control.sock, unix listeners) this master bound and the new master now serves.
   */
  exitAtOnce: boolean;
  /** Why the first generation did not start (code 1); `hitless start` ends with it as its one `hitless:` line. */
  failure?: HitlessError;
}

export interface RunMasterOptions {
  /**
   * The `hitless start` arguments the configuration came from: every reload reads and
   * validates it again from them (reconfigure.ts). Without them reloads keep `config`.
   */
  startArgv?: string[];
  /** What the configuration file held before `hitless start` validated it (reread.ts). */
  startFingerprint?: string | undefined;
  /** The path this master was started from, which an upgrade resolves again (default: process.argv[1]). */
  startedFrom?: string | undefined;
}

/**
 * Runs the master until it is stopped, or until it handed over to a new master (an
 * upgrade). Resolves with how it ended (see {@link MasterResult}). Throws HitlessError for
 * problems found before anything runs (bind errors, a master already running).
 *
 * Started by an upgrade (HITLESS_UPGRADE, set by the old master, successor.ts), it adopts
 * the sockets at fds 3… and the state the old master hands over instead of binding, listens
 * on a staged control socket, starts its first generation and tells the old master; it
 * takes control.sock and the pid file only when told to commit, and starts its triggers,
 * metrics and systemd notices at the takeover.
 */
export async function runMaster(
  config: MasterConfig,
  logger: Logger = createLogger({ format: config.logFormat }),
  options: RunMasterOptions = {},
): Promise<MasterResult> {
  const upgrade = await joinUpgrade(process.env);
  const tellFailed = (err: unknown): Promise<unknown> => (upgrade ? tellOldMaster(upgrade.channel, err) : Promise.resolve());
  const inherited = upgrade ? [] : inheritedListeners(process.env);
  const fromSystemd = upgrade ? upgrade.state.sockets.filter((s) => s.inherited).length : inherited.length;
  requireListenAddress(config.listen, fromSystemd > 0);
  // A `hitless scale` override of the old master lasts while the file says what it said then.
  const scale = upgrade?.state.scale?.readWorkers === config.workers ? upgrade.state.scale : undefined;
  if (scale) config = { ...config, workers: scale.workers };
  // The re-read sees what `hitless start` saw, systemd's sockets included (an empty listen list is valid then).
  const source: ConfigSource | undefined = options.startArgv && {
    argv: options.startArgv,
    cwd: process.cwd(),
    env: { ...process.env, ...(fromSystemd ? { LISTEN_FDS: String(fromSystemd) } : {}) },
    fingerprint: options.startFingerprint,
  };
  // A second `hitless start` in the same folder: say which master runs, not "address in use"
  // (a master started by `hitless upgrade` is the one that replaces it).
  if (!upgrade) await refuseSecondMaster(config.runDir, config.appDir);
  // Before anything binds: a pid file that cannot be written is said now, naming the setting.
  if (config.pidFile !== undefined) {
    prepareOutputFile(config.pidFile, 'pidFile (--pid-file)');
    // The pid file of another master running beside this one (its own run dir): not ours to take.
    if (!upgrade) refuseTakenPidFile(config.pidFile);
  }
  // The same for the worker log files: a folder that cannot hold them is said now.
  if (config.logs.mode === 'file') prepareFolder(config.logs.dir, LOG_FILE_NAME, 'logs.dir');
  const identities = new Identities();
  let listeners: ListenerSet;
  try {
    await identities.load(config);
    listeners = upgrade ? adoptListeners(upgrade.state.sockets) : openListeners(config.listen, inherited);
    // An entry named like one of systemd's sockets is that socket: its own address is not bound.
    for (const spec of config.listen) {
      const socket = inherited.find((l) => l.name === spec.name);
      if (socket) logger.info(`listen.${spec.name} (${spec.source}) is systemd's socket "${spec.name}" (fd ${socket.fd}): that socket serves it, and this address is not bound; give the entry another name to bind it as well`);
    }
    // Addresses the file gained since the old master last read it.
    if (upgrade) listeners.add(config.listen);
  } catch (err) {
    // An address in use: say which master holds it, if one does.
    const named = await nameTheHolder(err, config.listen);
    await tellFailed(named);
    throw named;
  }
  const pdeathsig = hasSetpriv();
  // What systemd gives the master is the master's: a worker's READY=1 must not reach systemd.
  const baseEnv = { ...process.env };
  for (const name of SERVICE_MANAGER_VARS) delete baseEnv[name];
  const priorityFacts = readPriorityFacts();
  // Why a boot lever does not apply, said once each (not at every reload).
  const noted = new Set<string>();
  const note = (text: string | undefined): void => {
    if (text === undefined || noted.has(text)) return;
    noted.add(text);
    logger.warn(text);
  };
  /** A generation's spec from a configuration: its sockets, its user, the OS facts. */
  const makeSpec = (c: MasterConfig): GenerationSpec => {
    const id = identities.get(c);
    const { fds, names } = listeners.select(c.listen);
    const held = listeners.status();
    const addresses = fds.flatMap((fd) => held.filter((l) => l.fd === fd));
    const boot = planBootPriority(c.bootNice ?? DEFAULT_BOOT_NICE, priorityFacts);
    const cache = compileCacheFolder(c, id);
    note(boot.note);
    note(cache.note);
    const spec = specFromConfig(c, {
      fds, fdNames: names, fdAddresses: addresses.map(messageAddress), pdeathsig, uid: id.uid, gid: id.gid, env: id.env, baseEnv,
      bootPriority: boot.plan, compileCache: cache.dir, cpus: availableParallelism(),
    });
    // Unmodified Node apps: the preload turns their own listen(port) into adoption (src/preload/),
    // by a path the next install keeps (pnpm's prune removes this master's own folder: h29 N1).
    const preload = preloadUrl(spec.cwd);
    spec.env = { ...spec.env, ...preloadEnv(spec.env, addresses, c.preload !== false, preload) };
    // A missing folder gets a line naming it, not spawn's ENOENT naming the program.
    checkWorkerFolder(spec.cwd);
    // A worker user that cannot reach the app gets one clear line, not the runtime's stack.
    if (id.uid !== undefined) {
      const who = { uid: id.uid, gid: id.gid ?? id.uid, name: id.name ?? String(id.uid) };
      checkWorkerAccess(who, spec.cwd, spec.command, spec.env.PATH);
      if (c.preload !== false) {
        checkReadableBy(who, fileURLToPath(preload), "hitless's preload for unmodified Node apps",
          'install hitless where that user can read it (e.g. under /opt or /usr/local), or set "preload": false (--no-preload) if the app uses the in-app library');
      }
    }
    return spec;
  };
  // A unix socket file removed while the master runs: said in status, the reload outcomes and
  // the log, with the fix (socket-files.ts says why it is not bound again).
  const socketFiles = new SocketFileWatch(() => (listeners.isClosed ? [] : listeners.items));
  const supervisor = new Supervisor({
    host: process.env.HITLESS_SESSION_NICE === '0' ? { ...realHost, setPriority: setTreeNice } : realHost,
    // Each generation snapshots the configuration in force when it is created.
    // Without a re-read configuration, a reload runs what serves now.
    spec: () => makeSpec(supervisor.current?.spec.config ?? config),
    version,
    listeners: () => listeners.status(),
    checks: () => socketFiles.problems(),
    usage: createProcStatReader(),
    uptime: () => process.uptime() * 1000 | 0,
    resume: upgrade && { ...upgrade.state.supervisor, upgradedFrom: { ...upgrade.state.from, at: Date.now() } },
    // For measurements only (docs/ARCHITECTURE.md, "Connection hand-over"): another hand-over window.
    ...(handoverWindowFromEnv(process.env) === undefined ? {} : { handoverWindow: handoverWindowFromEnv(process.env) }),
    ...(process.env.HITLESS_HANDOVER_SPREAD && Number(process.env.HITLESS_HANDOVER_SPREAD) >= 0 ? { handoverSpread: Number(process.env.HITLESS_HANDOVER_SPREAD) } : {}),
    ...(process.env.HITLESS_HANDOVER_LEFT === '0' ? { handoverPaceLeft: false } : {}),
    ...(process.env.HITLESS_HANDOVER_FILL === '0' ? { handoverFill: false } : {}),
    ...(process.env.HITLESS_CANARY_LEND === '0' ? { canaryLend: false } : {}),
    ...(process.env.HITLESS_FORK_NICE === '0' ? { forkAtBootNice: false } : {}),
    // Warm-up requests name the listener's address as their Host (a unix socket or an fd from systemd: localhost).
    // Its client runs at the new worker's booting priority (its increment over the master's), in a session of its own.
    warmer: createWarmer((name) => {
      const address = listeners.status().find((l) => l.name === name)?.address;
      return address === undefined || address.startsWith('unix:') || address.startsWith('fd:') ? 'localhost' : address;
    }, (w) => (w.spec.bootPriority ? w.spec.bootPriority.booting - w.spec.bootPriority.serving : 0),
    (pid, increment) => lowerForGood(pid, increment, priorityFacts)),
  });
  const app = { dir: config.appDir, configPath: config.configPath, runDir: config.runDir };
  // What everything else talks to: a reload through it reads the configuration first.
  // The reconfigure layer speaks configurations; the supervisor runs specs made from them.
  const master: ReconfigurableMaster = {
    get spec() {
      return supervisor.current?.spec.config ?? config;
    },
    reload: (reason, next, options) => supervisor.reload(reason, {
      spec: next && (() => makeSpec(next)), config: options?.config, strategy: options?.strategy, follow: options?.follow, holdDuringUpgrade: options?.holdDuringUpgrade,
    }),
    scale: (n) => supervisor.scale(n),
    status: () => ({ ...supervisor.status(), app, ...(parts.metricsAddress === undefined ? {} : { metrics: parts.metricsAddress }) }),
    stop: (force) => supervisor.stop(force),
    on: (event, fn) => supervisor.on(event, fn),
    off: (event, fn) => supervisor.off(event, fn),
    now: () => supervisor.now(),
    announceConfig: (reason, changes, notes) => supervisor.announceConfig(reason, changes, notes),
    refuseReload: (reason, startedAt, error, extra) => supervisor.refuseReload(reason, startedAt, error, extra),
  };
  const reconfigurer = new Reconfigurer({ master, listeners, identities, source, scale, onLive: (spec) => parts.apply(spec) });
  // HITLESS_NOTIFY_TIMEOUT_MS: another kill timeout per systemd-notify run (tests; notify.ts).
  const notifyTimeout = Number(process.env.HITLESS_NOTIFY_TIMEOUT_MS);
  const notifier = new ServiceNotifier({ env: process.env, logger, ...(notifyTimeout > 0 ? { timeoutMs: notifyTimeout } : {}) });
  // A new master is silent to systemd until the old one handed the service over.
  if (upgrade) notifier.mute();
  const status = (): string => statusLine(supervisor.status());
  /** Set once this master's upgrade passed its point of no return: the service is the new master's. */
  let handedOver = false;
  /** Run then: control.sock is the new master's (set once the control server runs). */
  let disownControl = (): void => {};
  const upgrader = masterUpgrader({
    supervisor, listeners, notifier, version, startArgv: options.startArgv, startedFrom: options.startedFrom, runDir: config.runDir,
    flagsOnly: config.configPath === undefined,
    limits: () => ({ readyTimeout: master.spec.readyTimeout, drainTimeout: master.spec.drainTimeout, stayReady: master.spec.stayReady }),
    scale: () => reconfigurer.scaleOverride,
    yieldParts: () => {
      handedOver = true;
      disownControl();
      return parts.yieldTriggers();
    },
    reload: (reason) => handle.reload(reason),
  });
  const handle: MasterHandle = {
    status: () => reconfigurer.status(),
    reload: async (reason, opts) => {
      // RELOADING=1 … READY=1 around reloads (Type=notify-reload); an upgrade speaks for itself.
      const notify = !supervisor.status().upgrade;
      if (notify) notifier.reloadRequested(() => `reloading (${reason}); ${status()}`);
      try {
        const outcome = await reconfigurer.reload(reason, opts);
        // Refused during an upgrade (the requester is told to ask the new master): said here, not
        // by an event the logger writes (the supervisor's `reload-refused` is for the counters,
        // and an upgrade's client ignores it), which would read as the upgrade's own.
        if (!opts?.holdDuringUpgrade && outcome.error?.code === 'ERR_UPGRADE_BUSY') {
          logger.warn(`${reason}: reload refused: ${outcome.error.message}`, { event: 'reload-refused', code: outcome.error.code, generation: outcome.generation });
        }
        return outcome;
      } finally {
        if (notify) notifier.reloadAnswered(status);
      }
    },
    scale: (n) => reconfigurer.scale(n),
    stop: (force) => {
      upgrader.abort();
      closeForStop();
      return reconfigurer.stop(force);
    },
    upgrade: (opts) => upgrader.run(opts),
    on: (event, fn) => reconfigurer.on(event, fn),
    off: (event, fn) => reconfigurer.off(event, fn),
  };
  /**
   * At a stop nothing accepts on the sockets any more: the master closes its copies at once,
   * so that once the workers closed theirs (at their drain's start) the kernel refuses new
   * connections. Before, they queued on the master's copy until it exited, and were reset
   * then (a client waited the whole drain for nothing; a balancer could not retry elsewhere).
   * Sockets systemd passed stay open in systemd, which queues for the next start.
   * Set once this master owns the sockets (below); a new master of an upgrade owns them only once committed.
   */
  let closeForStop = (): void => {};
  const parts = new Parts(handle, logger, (names, errors) => supervisor.reconfigured(names, errors));
  const closers: Closable[] = [];
  const readyWatch = new ReadyWatch({ emit: (e) => supervisor.readyWaiting(e) });
  // A worker that shut a held socket down (shutdown(2), not close(2)) stops it for every
  // generation: found when a worker exits, said, and made to listen again (listener-watch.ts).
  const socketWatch = new ListenerWatch({ sockets: () => (listeners.isClosed ? [] : listeners.items), relisten: (fds) => listeners.relisten(fds) });
  supervisor.on('event', (e: MasterEvent) => {
    readyWatch.onEvent(e);
    logEvent(logger, e);
    if (e.type === 'worker-exit' && !handedOver) {
      const when = `after worker ${e.generation}.${e.slot} (pid ${e.pid ?? '?'}) exited`;
      for (const s of socketWatch.check()) {
        supervisor.listenerStopped({ listener: s.name, address: s.address, fd: s.fd, relistened: s.relistened, text: stoppedText(s, when) });
      }
    }
    // After the outcome went out (log line, control reply): see gc.ts.
    if (e.type === 'reload-done') setImmediate(collectGarbage);
  });
  notifier.follow(supervisor);
  // A run dir this master makes goes with it if it holds nothing at the end (removeEmptyRunDir).
  const madeRunDir = !upgrade && !existsSync(config.runDir);
  let control: ControlServer;
  try {
    control = await startControl(config, handle, logger, upgrade && stagingSocketPath(config.runDir, process.pid));
    disownControl = () => control.disown();
  } catch (err) {
    notifier.close();
    await tellFailed(err);
    if (upgrade) listeners.release();
    else listeners.close();
    throw err;
  }
  closers.push(parts);
  const fileCheck = setInterval(() => {
    for (const text of socketFiles.news()) logger.warn(text, { event: 'socket-file-removed' });
  }, SOCKET_FILE_CHECK_MS);
  fileCheck.unref();
  closers.push({ close: () => clearInterval(fileCheck) });
  // Every user's clients can see that this folder has a master, even where its control socket is closed to them.
  const beacon = await openBeacon(config.appDir);
  if (beacon) closers.push(beacon);
  /** This master owns control.sock, the pid file and the unix socket files: a new master only once committed. */
  let owner = !upgrade;
  closeForStop = () => {
    if (owner && !handedOver) listeners.close();
  };
  const removeSignalHandlers = handleSignals(handle, logger);

  let code = 0;
  let failure: HitlessError | undefined;
  /** The old master died before it handed the service over, and this master took it: SuccessorDeps.adopt (h21 F4). */
  let adoption: Promise<void> | undefined;
  let adopted = false;
  const successor = upgrade && new Successor(upgrade.channel, {
    workers: () => supervisor.current?.live() ?? [],
    on: (event, fn) => supervisor.on(event, fn),
    addReleaseTotals: (releases) => supervisor.addReleaseTotals(releases),
    addReloadRequests: (counts) => supervisor.addReloadRequests(counts),
    runHeldReloads: (reasons) => {
      logger.info(`reload requested of the old master (pid ${upgrade.state.from.pid}) during the upgrade, held for this one (${reasons.join(', ')}): reloading now`, { event: 'held-reload', reasons });
      void handle.reload(reasons[0] ?? 'SIGHUP');
    },
    adopt: () => (adoption = (async () => {
      const old = upgrade.state.from.pid;
      // Its channel closes as it dies; the process may still be a zombie a moment (or long, unreaped).
      if (!(await waitForExit(old, ORPHAN_CHECK_MS, processEnded))) {
        throw new HitlessError('ERR_UPGRADE_FAILED', `the channel to the old master (pid ${old}) closed, but that master still runs: it keeps the service, and this master stops`);
      }
      control.claim();
      writePidFile(config.pidFile);
      owner = true;
      adopted = true;
      const serves = supervisor.current ? 'serves' : 'serves once its first generation is ready';
      logger.warn(`the old master (pid ${old}) died during the upgrade, before it handed the service over (killed or crashed): this master (pid ${process.pid}) took the control socket and the pid file and ${serves}; the old master's workers, orphaned, drain on their own`,
        { event: 'upgrade-orphaned', from: old });
    })()),
  });
  try {
    // In the try: log files or a pid file that fail even so (a folder removed since) stop
    // this master like a failed start does, its sockets and control socket closed, never a
    // master left running half started (it held the port and never stopped).
    await parts.startOutput(config);
    if (owner) writePidFile(config.pidFile);
    // A metrics port in use fails the start here, before any worker runs.
    // Held by another hitless master: named, as an address of `listen` is.
    if (!upgrade) await parts.startMetrics(config).catch(async (err: unknown) => { throw await nameMetricsHolder(err); });
    // master-start, the first generation, master-ready: the supervisor reports them.
    try {
      await supervisor.start();
    } catch (err) {
      await successor?.failed(err);
      throw err;
    }
    if (successor) {
      await successor.takeOver(supervisor.status().generation, version, () => {
        control.claim();
        writePidFile(config.pidFile);
        owner = true;
      }, async (takeover) => {
        notifier.unmute();
        notifier.status(status());
        notifier.startWatchdog();
        await parts.startTriggers(config, takeover?.metrics);
      });
    } else {
      await parts.startTriggers(config);
    }
  } catch (err) {
    let e = err instanceof HitlessError ? err : new HitlessError('ERR_START_FAILED', String(err), { cause: err });
    // Its old master died during the upgrade: this master was the only one left.
    await adoption?.catch(() => {});
    if (adopted && upgrade) {
      e = new HitlessError(e.code, `${e.message}; the old master (pid ${upgrade.state.from.pid}) died during the upgrade, so nothing serves this app now: start it with \`hitless start\``, { cause: e, details: e.details });
    }
    logger.error(e.message, { code: e.code });
    for (const line of (e.details.output as string[] | undefined) ?? []) logger.error(`  | ${line}`);
    code = 1;
    failure = e;
    // A new master whose upgrade ended before the commit drains what it started.
    void supervisor.stop(!(upgrade && supervisor.current));
  }
  // Stops come from a signal, `hitless stop`, the failed start above, or a completed upgrade.
  await supervisor.stopped;
  // An adoption under way when this master was stopped: what it claimed goes with this master.
  await adoption?.catch(() => {});
  readyWatch.close();
  await upgrader.idle;
  removeSignalHandlers();
  // Drops what systemd was not told yet: a notify socket that does not read never holds the exit.
  notifier.close();
  await Promise.allSettled(closers.map((c) => c.close()));
  if (handedOver) {
    await control.release();
    listeners.release();
    // The new master wrote its pid file; one at another path (pidFile changed in the config
    // before the upgrade) still names this process, which is gone in a moment.
    removePidFile(config.pidFile);
    logger.info('master handed over to the new master; exiting', { code });
    return { code, exitAtOnce: true };
  }
  await control.close();
  if (owner) {
    listeners.close();
    removePidFile(config.pidFile);
  } else {
    listeners.release();
  }
  if (madeRunDir) removeEmptyRunDir(config.runDir, [COMPILE_CACHE_DIR]);
  logger.info('master stopped', { code });
  return { code, exitAtOnce: false, ...(failure ? { failure } : {}) };
}

async function startControl(config: MasterConfig, handle: MasterHandle, logger: Logger, staged: string | undefined): Promise<ControlServer> {
  const { startControlServer } = await import('../control/server.js');
  return startControlServer({ runDir: config.runDir, handle, logger, ...(staged ? { stagingPath: staged } : {}) });
}
