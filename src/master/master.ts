/**
 * The master process, composed: hold the sockets, run the supervisor, answer the control
 * socket, map signals to actions, and start the optional triggers (watch, fetch) and
 * operations parts (log files, metrics) only when configured (parts.ts; each is imported
 * lazily, so a plain `hitless start` loads none of their dependencies). Everything that
 * asks for a reload goes through the Reconfigurer (reconfigure.ts), which reads the
 * configuration again first.
 *
 * Signals: SIGHUP asks for a reload, never dropped: queued behind one in progress, merged into one already
 * queued (sighup.ts); SIGTERM/SIGINT drain
 * everything and exit 0; a second SIGTERM/SIGINT kills workers at once. SIGUSR1 is left
 * to Node's debugger.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HitlessError } from '../errors.js';
import { inheritedListeners, openListeners, type ListenerSet } from './listeners.js';
import { collectGarbage } from './gc.js';
import { createLogger, logEvent, type Logger } from '../core/logger.js';
import { Supervisor } from '../core/supervisor.js';
import { realHost } from '../core/process.js';
import { createProcStatReader } from './procstat.js';
import { specFromConfig, type GenerationSpec } from '../core/spec.js';
import { checkReadableBy, checkWorkerAccess } from '../ops/access.js';
import type { MasterConfig } from '../config/types.js';
import type { MasterEvent, MasterHandle } from '../core/types.js';
import { Identities } from './identity.js';
import { compileCacheFolder } from './compile-cache.js';
import { createWarmer } from './warmup.js';
import { planBootPriority, readPriorityFacts } from '../core/priority.js';
import { DEFAULT_BOOT_NICE } from '../config/defaults.js';
import { PRELOAD_URL, preloadEnv } from './preload-env.js';
import { Parts } from './parts.js';
import { sighupHandler } from './sighup.js';
import { nameTheHolder, refuseSecondMaster } from './occupied.js';
import { ReadyWatch } from './ready-wait.js';
import { Reconfigurer, type ConfigSource, type ReconfigurableMaster } from './reconfigure.js';

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
 * speed). Not settings: the benchmarks use them to show what the defaults buy.
 */
function handoverWindowFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const n = Number(env.HITLESS_HANDOVER_WINDOW);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** True when util-linux's setpriv can give workers a parent-death signal. */
function hasSetpriv(): boolean {
  return spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface RunMasterOptions {
  /**
   * The `hitless start` arguments the configuration came from: every reload reads and
   * validates it again from them (reconfigure.ts). Without them reloads keep `config`.
   */
  startArgv?: string[];
  /** What the configuration file held before `hitless start` validated it (reread.ts). */
  startFingerprint?: string | undefined;
}

/**
 * Runs the master until it is stopped. Resolves with the process exit code: 0 after a
 * graceful stop, 1 when the first generation could not start. Throws HitlessError for
 * problems found before anything runs (bind errors, a master already running).
 */
export async function runMaster(
  config: MasterConfig,
  logger: Logger = createLogger({ format: config.logFormat }),
  options: RunMasterOptions = {},
): Promise<number> {
  const inherited = inheritedListeners(process.env);
  if (config.listen.length === 0 && inherited.length === 0) {
    throw new HitlessError('ERR_CONFIG_INVALID', 'listen: no address to listen on (add --listen 8080 or "listen": ["8080"] to hitless.json)');
  }
  // The re-read sees what `hitless start` saw, systemd's sockets included (an empty listen list is valid then).
  const source: ConfigSource | undefined = options.startArgv && {
    argv: options.startArgv,
    cwd: process.cwd(),
    env: { ...process.env, ...(inherited.length ? { LISTEN_FDS: String(inherited.length) } : {}) },
    fingerprint: options.startFingerprint,
  };
  // A second `hitless start` in the same folder: say which master runs, not "address in use".
  await refuseSecondMaster(config.runDir, config.appDir);
  const identities = new Identities();
  await identities.load(config);
  let listeners: ListenerSet;
  try {
    listeners = openListeners(config.listen, inherited);
  } catch (err) {
    throw await nameTheHolder(err, config.listen);
  }
  const pdeathsig = hasSetpriv();
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
    const boot = planBootPriority(c.bootNice ?? DEFAULT_BOOT_NICE, priorityFacts);
    const cache = compileCacheFolder(c, id);
    note(boot.note);
    note(cache.note);
    const spec = specFromConfig(c, {
      fds, fdNames: names, pdeathsig, uid: id.uid, gid: id.gid, env: id.env, baseEnv: process.env,
      bootPriority: boot.plan, compileCache: cache.dir,
    });
    // Unmodified Node apps: the preload turns their own listen(port) into adoption (src/preload/).
    const held = listeners.status();
    const addresses = fds.flatMap((fd) => held.filter((l) => l.fd === fd));
    spec.env = { ...spec.env, ...preloadEnv(spec.env, addresses, c.preload !== false) };
    // A worker user that cannot reach the app gets one clear line, not the runtime's stack.
    if (id.uid !== undefined) {
      const who = { uid: id.uid, gid: id.gid ?? id.uid, name: id.name ?? String(id.uid) };
      checkWorkerAccess(who, spec.cwd, spec.command, spec.env.PATH);
      if (c.preload !== false) {
        checkReadableBy(who, fileURLToPath(PRELOAD_URL), "hitless's preload for unmodified Node apps",
          'install hitless where that user can read it (e.g. under /opt or /usr/local), or set "preload": false (--no-preload) if the app uses the in-app library');
      }
    }
    return spec;
  };
  const supervisor = new Supervisor({
    host: realHost,
    // Each generation snapshots the configuration in force when it is created.
    // Without a re-read configuration, a reload runs what serves now.
    spec: () => makeSpec(supervisor.current?.spec.config ?? config),
    version,
    listeners: () => listeners.status(),
    usage: createProcStatReader(),
    uptime: () => process.uptime() * 1000 | 0,
    // For measurements only (docs/ARCHITECTURE.md, "Connection hand-over"): another hand-over window.
    ...(handoverWindowFromEnv(process.env) === undefined ? {} : { handoverWindow: handoverWindowFromEnv(process.env) }),
    ...(process.env.HITLESS_HANDOVER_SPREAD && Number(process.env.HITLESS_HANDOVER_SPREAD) >= 0 ? { handoverSpread: Number(process.env.HITLESS_HANDOVER_SPREAD) } : {}),
    // Warm-up requests name the listener's address as their Host (a unix socket or an fd from systemd: localhost).
    // Its client runs at the new worker's booting priority (its increment over the master's).
    warmer: createWarmer((name) => {
      const address = listeners.status().find((l) => l.name === name)?.address;
      return address === undefined || address.startsWith('unix:') || address.startsWith('fd:') ? 'localhost' : address;
    }, (w) => (w.spec.bootPriority ? w.spec.bootPriority.booting - w.spec.bootPriority.serving : 0)),
  });
  const app = { dir: config.appDir, configPath: config.configPath, runDir: config.runDir };
  // What everything else talks to: a reload through it reads the configuration first.
  // The reconfigure layer speaks configurations; the supervisor runs specs made from them.
  const master: ReconfigurableMaster = {
    get spec() {
      return supervisor.current?.spec.config ?? config;
    },
    reload: (reason, next, options) => supervisor.reload(reason, { spec: next && (() => makeSpec(next)), strategy: options?.strategy }),
    scale: (n) => supervisor.scale(n),
    status: () => ({ ...supervisor.status(), app }),
    stop: (force) => supervisor.stop(force),
    on: (event, fn) => supervisor.on(event, fn),
    off: (event, fn) => supervisor.off(event, fn),
    now: () => supervisor.now(),
    announceConfig: (reason, changes, notes) => supervisor.announceConfig(reason, changes, notes),
    refuseReload: (reason, startedAt, error, extra) => supervisor.refuseReload(reason, startedAt, error, extra),
  };
  const handle = new Reconfigurer({ master, listeners, identities, source, onLive: (spec) => parts.apply(spec) });
  const parts = new Parts(handle, logger, (names, errors) => supervisor.reconfigured(names, errors));
  const closers: Closable[] = [];
  const readyWatch = new ReadyWatch({ emit: (e) => supervisor.readyWaiting(e) });
  supervisor.on('event', (e: MasterEvent) => {
    readyWatch.onEvent(e);
    logEvent(logger, e);
    // After the outcome went out (log line, control reply): see gc.ts.
    if (e.type === 'reload-done') setImmediate(collectGarbage);
  });
  try {
    closers.push(await startControl(config, handle, logger));
  } catch (err) {
    listeners.close();
    throw err;
  }
  closers.push(parts);
  await parts.startOutput(config);
  writePidFile(config.pidFile);
  const removeSignalHandlers = handleSignals(handle, logger);

  let code = 0;
  try {
    // master-start, the first generation, master-ready: the supervisor reports them.
    await supervisor.start();
    await parts.startTriggers(config);
  } catch (err) {
    const e = err instanceof HitlessError ? err : new HitlessError('ERR_START_FAILED', String(err), { cause: err });
    logger.error(e.message, { code: e.code });
    for (const line of (e.details.output as string[] | undefined) ?? []) logger.error(`  | ${line}`);
    code = 1;
    void supervisor.stop(true);
  }
  // Stops come from a signal, `hitless stop`, or the failed start above.
  await supervisor.stopped;
  readyWatch.close();
  removeSignalHandlers();
  await shutdownParts(closers, listeners, config.pidFile);
  logger.info('master stopped', { code });
  return code;
}

async function startControl(config: MasterConfig, handle: MasterHandle, logger: Logger): Promise<Closable> {
  const { startControlServer } = await import('../control/server.js');
  return startControlServer({ runDir: config.runDir, handle, logger });
}

/** Maps signals to actions; the returned function removes the handlers. */
function handleSignals(supervisor: MasterHandle, logger: Logger): () => void {
  const hup = sighupHandler(supervisor, logger);
  const onHup = (): void => void hup();
  let stops = 0;
  const onStop = (signal: NodeJS.Signals): void => {
    stops += 1;
    if (stops === 1) logger.info(`${signal} received: draining all workers (send it again to stop at once)`);
    else logger.warn(`${signal} received again: killing workers now`);
    void supervisor.stop(stops > 1);
  };
  process.on('SIGHUP', onHup);
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  return () => {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  };
}

function writePidFile(path: string | undefined): void {
  if (!path) return;
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`);
  renameSync(tmp, path);
}

async function shutdownParts(closers: Closable[], listeners: ListenerSet, pidFile: string | undefined): Promise<void> {
  await Promise.allSettled(closers.map((c) => c.close()));
  listeners.close();
  if (pidFile) {
    try {
      unlinkSync(pidFile);
    } catch {
      // already removed
    }
  }
}
