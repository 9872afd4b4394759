/**
 * The process lifecycle: the onShutdown hooks, the stop-signal handlers and the master's
 * `stop` message. This is the only module of the library that writes to stderr or calls
 * process.exit (a library must not end its host process anywhere else).
 *
 * The master's `move` (a canary starting beside this serving process) goes to move.ts.
 *
 * Sequence on SIGTERM/SIGINT (or env HITLESS_STOP_SIGNAL, a lost master lifeline, or the
 * master's `stop`): isShuttingDown() turns true -> shutdownDelay (none once the master is
 * gone) -> shutdown() of every registered server in parallel (handing HTTP/1.1 connections
 * over when the master's `stop` asked for it) -> hooks in registration order, each with its
 * own time limit -> exit 0.
 * A second stop signal exits at once with 128 + the signal number (SIGINT 130, SIGTERM 143),
 * unless it comes within SAME_STOP_MS of the stop's beginning (one Ctrl-C under npm arrives
 * twice), or the master (standalone: the parent) is gone by then: the parent-death signal
 * that the master gives its workers comes again at each re-parenting (orphan.ts).
 */
import { constants } from 'node:os';
import { HitlessError } from '../errors.js';
import { channelEnabled, onChannelMessage, send } from './channel.js';
import { DEFAULT_STOP_SIGNALS, SAME_STOP_MS } from './defaults.js';
import { Handover } from './handover.js';
import { markShuttingDown } from './health.js';
import { endMove, startMove } from './move.js';
import { appFix } from './apps.js';
import { checkServer, drainTimeoutAfter, invalid, object, knownKeys, resolveHookTimeout, type ResolvedShutdownOptions } from './options.js';
import { resolveShutdownOptions } from './options.js';
import { reportDrainProgress } from './progress.js';
import { reportStatsNow } from './stats.js';
import { orphaned } from './orphan.js';
import { whenLifelineLost } from './ready.js';
import { receiveConnection } from './receive.js';
import { addServer, hasServer, markStopHandled, registeredServers } from './registry.js';
import { drainServer } from './shutdown.js';
import { instrument, trackerOf } from './track.js';
import type { AnyServer, ShutdownResult, TrackOptions } from './types.js';

interface Hook {
  fn: () => unknown;
  timeout: number;
}

const hooks: Hook[] = [];
let shutdownDelay = 0;
let installed = false;
let stopping = false;
/** When the stop began (performance.now()): a stop signal within SAME_STOP_MS of it is the same stop. */
let stopBegan = 0;
/** The drain of every registered server, once begun (drainRegistered). */
let drainedAll: Promise<void> | undefined;

/** How the master asks a process to stop: with hand-over, and how many connections may be in transit at once. */
export interface StopRequest {
  handover?: boolean;
  /** At most this many handed-over connections at the master that have not landed yet (its `landed` messages). */
  window?: number | undefined;
  /**
   * The listening sockets stay served by other workers (the master retires this one in a
   * reload and hands its connections over: its `stop` message says so): nobody has to learn
   * that the process goes away, so `shutdownDelay` is not waited out.
   */
  socketsStay?: boolean;
  /**
   * False when the master knows that no worker of the next generation takes WebSockets (none
   * said `ws-hello`, or a `hitless upgrade`): hitless/ws does not try to move them, they are
   * closed at their turn as without it. Default: it tries.
   */
  webSockets?: boolean | undefined;
  /** How long the stop waited (`shutdownDelay`) before this drain: a deadline that follows the master's `drainTimeout` is shorter by that. */
  waited?: number;
}

/** What the master's `stop` message does (the preload routes it to the app's own stop handling). */
let onStopMessage: (how: StopRequest) => void = (how) => beginShutdown(how);

/** Ends a `shutdownDelay` under way at once (the master is gone: see beginShutdown). */
let endDelay: (() => void) | undefined;

whenLifelineLost(() => {
  endDelay?.();
  beginShutdown();
});
onChannelMessage('stop', (message) =>
  onStopMessage({ handover: message.handover === true, window: message.window, socketsStay: true, webSockets: message.webSockets !== false }),
);

/**
 * Routes the master's `stop` message to `fn` instead of {@link beginShutdown} (internal: the
 * preload drains with hand-over, then gives the app's own stop handlers the stop signal).
 */
export function takeStopMessage(fn: (how: StopRequest) => void): void {
  markStopHandled();
  onStopMessage = fn;
}
onChannelMessage('conn', receiveConnection);
// A serving process hands a part of its connections over (a canary starts beside it): move.ts.
// Once stopping (or draining, as the preload does without beginShutdown), nothing more moves.
onChannelMessage('move', (message) => (stopping || drainedAll !== undefined ? send({ type: 'move-done', moved: 0, kept: 0 }) : startMove(message)));
onChannelMessage('move-end', () => endMove());

/**
 * Registers `server` to be drained with `options` when the process stops (internal);
 * `name` is the inherited socket it listens on, if known. Returns the undo for a listen
 * that failed: the server's earlier registration, if it had one, is restored (a second
 * listen() of a listening server fails, and the first one must keep its graceful stop).
 */
export function register(server: AnyServer, options: ResolvedShutdownOptions, signals: boolean, delay: number, name?: string): () => void {
  const undo = addServer(server, options, name);
  const delayBefore = shutdownDelay;
  shutdownDelay = Math.max(shutdownDelay, delay);
  if (signals) installSignals();
  return () => {
    undo();
    shutdownDelay = delayBefore;
  };
}

/**
 * Instruments `server` for {@link shutdown} without listening (for servers you listen()
 * yourself): call it before the server accepts its first connection. Unless
 * `signals: false`, the server is also drained on SIGTERM/SIGINT.
 *
 * @example
 * const server = http.createServer(app);
 * track(server);
 * server.listen(8080);
 */
export function track(server: AnyServer, options?: TrackOptions): void {
  checkServer('track()', server, appFix('track', server, 'track(http.createServer(handler)), then server.listen()'));
  const opts = object('track()', 'options', options);
  knownKeys('track()', opts, ['signals']);
  const signals = opts.signals ?? true;
  if (typeof signals !== 'boolean') invalid('track()', 'signals', signals, 'true or false', '{ signals: false }');
  instrument(server);
  if (!hasServer(server)) register(server, resolveShutdownOptions('track()', undefined), signals, 0);
}

/**
 * Runs `fn` after every registered server drained, when the process stops (signal or lost
 * master). Hooks run one after another in registration order; each gets `timeout` ms
 * (default {@link DEFAULT_HOOK_TIMEOUT}, 5000). A hook that throws or times out is reported
 * on stderr and does not stop the others. Returns a function that unregisters the hook.
 *
 * @example
 * onShutdown(() => pool.end(), { timeout: 2000 });
 */
export function onShutdown(fn: () => unknown, options?: { timeout?: number | undefined }): () => void {
  if (typeof fn !== 'function') invalid('onShutdown()', 'fn', fn, 'a function', 'onShutdown(() => pool.end())');
  const opts = object('onShutdown()', 'options', options);
  knownKeys('onShutdown()', opts, ['timeout']);
  const hook: Hook = { fn, timeout: resolveHookTimeout(opts.timeout) };
  hooks.push(hook);
  return () => {
    const at = hooks.indexOf(hook);
    if (at !== -1) hooks.splice(at, 1);
  };
}

/** The signals that start the graceful stop: SIGTERM, SIGINT and env HITLESS_STOP_SIGNAL (internal; the preload uses it too). */
export function stopSignals(): NodeJS.Signals[] {
  const list = [...DEFAULT_STOP_SIGNALS];
  const extra = process.env.HITLESS_STOP_SIGNAL;
  if (extra !== undefined && extra !== '') {
    const name = envStopSignal();
    if (name !== undefined) {
      if (!list.includes(name)) list.push(name);
    } else {
      process.stderr.write(`hitless: ignoring HITLESS_STOP_SIGNAL=${extra}: not a signal a process can handle\n`);
    }
  }
  return list;
}

/** The signal the master stops workers with: env HITLESS_STOP_SIGNAL, else SIGTERM (internal; the preload delivers it on `stop`). */
export function masterStopSignal(): NodeJS.Signals {
  return envStopSignal() ?? 'SIGTERM';
}

/** HITLESS_STOP_SIGNAL ("TERM" or "SIGTERM") when it names a signal a process can handle; else undefined. */
function envStopSignal(): NodeJS.Signals | undefined {
  const extra = process.env.HITLESS_STOP_SIGNAL;
  if (extra === undefined || extra === '') return undefined;
  const name = (extra.startsWith('SIG') ? extra : `SIG${extra}`).toUpperCase() as NodeJS.Signals;
  return name in constants.signals && name !== 'SIGKILL' && name !== 'SIGSTOP' ? name : undefined;
}

function installSignals(): void {
  if (installed) return;
  installed = true;
  markStopHandled();
  for (const signal of stopSignals()) {
    process.on(signal, () => {
      if (stopping) {
        // The master died: its parent-death signal comes once per re-parenting (orphan.ts),
        // and the drain it started goes on, to its end or its timeout.
        if (orphaned()) return;
        // One Ctrl-C delivered twice (npm forwards it, the terminal sends it too).
        if (performance.now() - stopBegan < SAME_STOP_MS) return;
        // Second signal: the operator wants it gone now.
        process.exit(128 + (constants.signals[signal] ?? 0));
      }
      beginShutdown();
    });
  }
}

/**
 * Starts the graceful stop of the whole process (idempotent): drains every registered
 * server, runs the hooks, exits 0. With shutdownDelay 0 (or sockets that stay served: the
 * master's `stop`) the drains begin synchronously.
 * With `handover` (the master's `stop`), HTTP/1.1 connections go to the master instead of
 * being closed, as long as its channel is there.
 */
export function beginShutdown(how: StopRequest = {}): void {
  if (stopping) return;
  stopping = true;
  stopBegan = performance.now();
  markShuttingDown();
  // No delay once the master is gone (killed, crashed): nothing routes by this process's
  // readiness any more, and the master restarted by systemd or supervisord needs the port,
  // which this process's copy of the socket holds until its drain closes it.
  const delay = how.socketsStay === true || masterGone() ? 0 : shutdownDelay;
  const drained = delay > 0 ? afterDelay(delay).then((waited) => drainRegistered({ ...how, waited })) : drainRegistered(how);
  drained
    .then(runHooks)
    .then(flushStdio)
    .finally(() => process.exit(0));
}

/** Under a master that is gone (its pid, its lifeline: orphan.ts); standalone never. */
function masterGone(): boolean {
  return process.env.HITLESS_MASTER_PID !== undefined && orphaned();
}

/**
 * Resolves after `ms`, or as soon as the master's lifeline closes, with the ms waited.
 */
function afterDelay(ms: number): Promise<number> {
  const began = performance.now();
  return new Promise<number>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      endDelay = undefined;
      resolve(Math.min(ms, performance.now() - began));
    };
    const timer = setTimeout(done, ms);
    endDelay = done;
  });
}

/**
 * Drains every registered server once (later calls share the promise, whatever they ask):
 * with `handover` and the master's channel there, HTTP/1.1 connections go to the new
 * generation; tells the master what was drained, and resolves once the hand-over finished.
 * Never rejects (internal; the preload drains through it too).
 */
export function drainRegistered(how: StopRequest = {}): Promise<void> {
  drainedAll ??= (() => {
    // A move under way ends: its picks not sent yet follow the drain like every other connection.
    endMove();
    const handover = how.handover === true && Handover.possible() ? Handover.forStop(keptConnections, how.window) : undefined;
    const waited = how.waited ?? 0;
    const drains = registeredServers().map(([server, options]) =>
      drainServer(server, waited > 0 ? { ...options, timeout: drainTimeoutAfter(options, waited) } : options, handover, how.webSockets !== false));
    // Once every drain began: what they move first (hitless/ws) holds the `lingering` report back.
    const stopReporting = reportDrainProgress();
    handover?.seal();
    return Promise.all(drains)
      .finally(stopReporting)
      .then(reportDrained)
      .catch((err: unknown) => void process.stderr.write(`hitless: drain failed: ${describe(err)}\n`))
      .then(() => handover?.finish());
  })();
  return drainedAll;
}

/** How long the exit waits for the `drained` report to be written to the master. */
const REPORT_LIMIT_MS = 500;

/**
 * Tells the master how many connections the drain closed gracefully and how many it forced
 * (`drained`, for the reload outcome); no-op without the channel.
 */
function reportDrained(results: ShutdownResult[]): Promise<void> {
  if (!channelEnabled()) return Promise.resolve();
  const drained = results.reduce((n, r) => n + r.drained.connections, 0);
  const forced = results.reduce((n, r) => n + r.forced.connections, 0);
  // Of those drained, the WebSockets: an upgrade closes them (no new master's worker takes one), and says so.
  const upgraded = results.reduce((n, r) => n + r.drained.upgraded, 0);
  // The traffic totals first (the channel keeps the order): everything answered is in them.
  reportStatsNow();
  return new Promise<void>((resolve) => {
    const limit = setTimeout(resolve, REPORT_LIMIT_MS);
    limit.unref();
    send({ type: 'drained', drained, forced, ...(upgraded ? { upgraded } : {}) }, undefined, () => {
      clearTimeout(limit);
      resolve();
    });
  });
}

/** Open connections of the registered servers that were not handed over. */
function keptConnections(): number {
  let kept = 0;
  for (const [server] of registeredServers()) kept += trackerOf(server)?.keptConnections() ?? 0;
  return kept;
}

/** How long the exit waits for stdout/stderr to drain into their pipes. */
const FLUSH_LIMIT_MS = 2000;

/**
 * Waits until what the app wrote to stdout/stderr has reached the pipe. Writes to a pipe
 * are asynchronous in Node on Linux, and process.exit() drops what is still queued: a
 * worker under the master (whose stdout is a pipe) would lose its last log lines.
 */
export function flushStdio(): Promise<void> {
  const flushed = [process.stdout, process.stderr].map(
    (stream) => new Promise<void>((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve()))),
  );
  return Promise.race([Promise.all(flushed).then(() => undefined), new Promise<void>((r) => setTimeout(r, FLUSH_LIMIT_MS).unref())]);
}

async function runHooks(): Promise<void> {
  for (const [index, hook] of [...hooks].entries()) {
    let timer: NodeJS.Timeout | undefined;
    const label = hook.fn.name ? `"${hook.fn.name}"` : `#${index + 1}`;
    const limit = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new HitlessError('ERR_SHUTDOWN_HOOK_TIMEOUT', `onShutdown hook ${label} did not finish within ${hook.timeout} ms`));
      }, hook.timeout);
    });
    try {
      await Promise.race([Promise.resolve().then(hook.fn), limit]);
    } catch (err) {
      const text = err instanceof HitlessError ? describe(err) : `onShutdown hook ${label} failed: ${describe(err)}`;
      process.stderr.write(`hitless: ${text}\n`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof HitlessError) return `${err.message} (${err.code})`;
  if (err instanceof Error) return err.stack ?? err.message;
  return String(err);
}
