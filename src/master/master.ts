/**
 * The master process, composed: hold the sockets, run the supervisor, answer the control
 * socket, map signals to actions, and start the optional triggers (watch, fetch) and
 * operations parts (log files, metrics) only when configured (each is imported lazily, so
 * a plain `hitless start` loads none of their dependencies).
 *
 * Signals: SIGHUP reloads at once (the rest of a burst of SIGHUPs is ignored: core/hup.ts); SIGTERM/SIGINT drain
 * everything and exit 0; a second SIGTERM/SIGINT kills workers at once. SIGUSR1 is left
 * to Node's debugger.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { HitlessError } from '../errors.js';
import { inheritedListeners, openListeners, type ListenerSet } from '../core/listeners.js';
import { collectGarbage } from './gc.js';
import { createLogger, logEvent, type Logger } from '../core/logger.js';
import { Supervisor } from '../core/supervisor.js';
import { HupFilter } from '../core/hup.js';
import { realHost } from '../core/process.js';
import { createProcStatReader } from '../core/procstat.js';
import { specFromConfig } from '../core/spec.js';
import type { MasterConfig } from '../config/types.js';
import type { MasterEvent } from '../core/types.js';

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

/** True when util-linux's setpriv can give workers a parent-death signal. */
function hasSetpriv(): boolean {
  return spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Runs the master until it is stopped. Resolves with the process exit code: 0 after a
 * graceful stop, 1 when the first generation could not start. Throws HitlessError for
 * problems found before anything runs (bind errors, a master already running).
 */
export async function runMaster(config: MasterConfig, logger: Logger = createLogger({ format: config.logFormat })): Promise<number> {
  const inherited = inheritedListeners(process.env);
  if (config.listen.length === 0 && inherited.length === 0) {
    throw new HitlessError('ERR_CONFIG_INVALID', 'listen: no address to listen on (add --listen 8080 or "listen": ["8080"] to hitless.json)');
  }
  const privileges = await resolvePrivileges(config);
  const listeners = openListeners(config.listen, inherited);
  const closers: Closable[] = [];
  const pdeathsig = hasSetpriv();
  const supervisor = new Supervisor({
    host: realHost,
    // Each generation snapshots the configuration in force when it is created.
    spec: () => {
      const spec = specFromConfig(config, {
        fds: listeners.fds, fdNames: listeners.names, pdeathsig,
        uid: privileges?.uid, gid: privileges?.gid, env: privileges?.env ?? {}, baseEnv: process.env,
      });
      // A worker user that cannot reach the app gets one clear line, not the runtime's stack.
      privileges?.checkAccess(spec.cwd, spec.command, spec.env.PATH);
      return spec;
    },
    version,
    listeners: () => listeners.status(),
    usage: createProcStatReader(),
  });
  supervisor.on('event', (e: MasterEvent) => {
    logEvent(logger, e);
    // After the outcome went out (log line, control reply): see gc.ts.
    if (e.type === 'reload-done') setImmediate(collectGarbage);
  });
  try {
    closers.push(await startControl(config, supervisor, logger));
  } catch (err) {
    listeners.close();
    throw err;
  }
  if (config.logs.mode === 'file') {
    const { startLogFiles } = await import('../ops/logfiles.js');
    closers.push(await startLogFiles(config, supervisor, logger));
  } else {
    forwardOutput(supervisor, config.logs.tag);
  }
  writePidFile(config.pidFile);
  const removeSignalHandlers = handleSignals(supervisor, logger);
  supervisor.emit('event', { type: 'master-start', pid: process.pid, listeners: listeners.status() } satisfies MasterEvent);

  let code = 0;
  try {
    await supervisor.start();
    const { generation } = supervisor.status();
    supervisor.emit('event', { type: 'master-ready', generation, ms: process.uptime() * 1000 | 0 } satisfies MasterEvent);
    closers.push(...(await startTriggers(config, supervisor, logger)));
  } catch (err) {
    const e = err instanceof HitlessError ? err : new HitlessError('ERR_START_FAILED', String(err), { cause: err });
    logger.error(e.message, { code: e.code });
    for (const line of (e.details.output as string[] | undefined) ?? []) logger.error(`  | ${line}`);
    code = 1;
    void supervisor.stop(true);
  }
  // Stops come from a signal, `hitless stop`, or the failed start above.
  await supervisor.stopped;
  removeSignalHandlers();
  await shutdownParts(closers, listeners, config.pidFile);
  logger.info('master stopped', { code });
  return code;
}

async function resolvePrivileges(config: MasterConfig) {
  if (config.user === undefined && config.group === undefined) return undefined;
  const { resolvePrivileges: resolve } = await import('../ops/privileges.js');
  const { checkWorkerAccess } = await import('../ops/access.js');
  const p = resolve(config.user, config.group);
  if (!p) return undefined;
  const who = { uid: p.uid, gid: p.gid, name: p.name };
  return {
    uid: p.uid, gid: p.gid, env: { HOME: p.home, USER: p.name, LOGNAME: p.name },
    checkAccess: (cwd: string, command: string[], path: string | undefined) => checkWorkerAccess(who, cwd, command, path),
  };
}

async function startControl(config: MasterConfig, supervisor: Supervisor, logger: Logger): Promise<Closable> {
  const { startControlServer } = await import('../control/server.js');
  return startControlServer({ runDir: config.runDir, handle: supervisor, logger });
}

async function startTriggers(config: MasterConfig, supervisor: Supervisor, logger: Logger): Promise<Closable[]> {
  const parts: Closable[] = [];
  if (config.watch) parts.push((await import('../release/watch.js')).startWatch(config, supervisor, logger));
  if (config.fetch) parts.push((await import('../release/fetcher.js')).startFetcher(config, supervisor, logger));
  if (config.metrics) parts.push(await (await import('../ops/metrics.js')).startMetrics(config, supervisor, logger));
  return parts;
}

/** Worker lines go to the master's stdout/stderr unchanged (or tagged with generation.slot). */
function forwardOutput(supervisor: Supervisor, tag: boolean): void {
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  supervisor.on('event', (e: MasterEvent) => {
    if (e.type !== 'worker-output') return;
    const out = e.stream === 'stdout' ? process.stdout : process.stderr;
    out.write(tag ? `[${e.generation}.${e.slot}] ${e.line}\n` : `${e.line}\n`);
  });
}

/** Maps signals to actions; the returned function removes the handlers. */
function handleSignals(supervisor: Supervisor, logger: Logger): () => void {
  const hups = new HupFilter(() => performance.now());
  const onHup = (): void => {
    if (!hups.accept()) return;
    logger.info('SIGHUP received: reload requested');
    void supervisor.reload('SIGHUP').finally(() => hups.done());
  };
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
