/**
 * Graceful stop for apps the preload adopted sockets for, including apps with a stop
 * handler of their own. Left alone, those lose requests on every reload: PM2's documented
 * `server.close(); process.exit(0)` cuts in-flight requests, http.Server#close closes idle
 * keep-alive connections at once (Node >= 19) and resets requests already on the wire,
 * Fastify answers 503 to every request once its close() began, Next.js exits after close().
 *
 * So, once a socket was adopted:
 * - A stop signal (SIGTERM, SIGINT, HITLESS_STOP_SIGNAL) first drains the adopted servers
 *   the library's way; the app's own handlers receive the signal only once no HTTP request
 *   or keep-alive connection is left (WebSockets are closed with 1001 over the spread window
 *   meanwhile, src/lib/goaway.ts; they may still be closing). Without a handler of its own, the app is stopped as
 *   the library stops it: drain, onShutdown hooks, exit 0. A second stop signal exits at once
 *   (not the master's parent-death signal coming again: src/lib/orphan.ts).
 * - The master's `stop` message (a reload, sent instead of the stop signal because the
 *   preload said hello for the adopted servers) is that stop signal with hand-over: the
 *   drain first moves HTTP/1.1 keep-alive connections to the new generation, then the
 *   app's handlers for the master's stop signal run as above.
 * - close() of an adopted server is the graceful drain; its callback runs once every
 *   connection is gone, as with Node's own close(). closeIdleConnections() does nothing
 *   once the drain runs (the drain closes idle connections itself, after a grace).
 * - process.exit(code) waits for the drain of every adopted server, then exits with that
 *   code. It cannot block: called while the drain still runs (for example from a request
 *   handler), it returns to its caller, and the process exits when the drain ends.
 *
 * Signals are taken in process.emit, which Node calls for each delivered signal: the app's
 * listeners, wherever they were registered, are reached only through it. Like
 * src/lib/lifecycle.ts, this module ends the process: the preload acts for the app's main
 * program, it is not a library the app calls.
 */
import { constants } from 'node:os';
import type net from 'node:net';
import { beginShutdown, drainRegistered, flushStdio, masterStopSignal, stopSignals, takeStopMessage, type StopRequest } from '../lib/lifecycle.js';
import { orphaned } from '../lib/orphan.js';
import { shutdown } from '../lib/shutdown.js';
import { trackerOf } from '../lib/track.js';
import type { AnyServer } from '../lib/types.js';

/** How often the deferred stop signal checks whether the HTTP connections are gone. */
const HTTP_DRAINED_POLL_MS = 20;

const adopted: AnyServer[] = [];
/** Adopted servers whose drain has begun. */
const closing = new WeakSet<AnyServer>();
let drained: Promise<void> | undefined;
let drainDone = false;
let exitCode: number | undefined;
let exiting = false;
let signals = 0;
/** The app's own handlers were given the stop signal. */
let delivered = false;
let realExit: (code?: number) => never = (code) => process.exit(code);
let stopList: NodeJS.Signals[] = [];
let deliverSignal: (signal: NodeJS.Signals) => void = (signal) => void process.emit(signal as 'SIGTERM', signal);

/**
 * Takes the stop signals in process.emit (inactive until a socket is adopted). Called at
 * preload time, before the app runs: Node binds process.emit for a signal when its first
 * listener is added, and the app may add one before it listens.
 *
 * @example
 * hookStopSignals(); // in the preload, before the app's code runs
 */
export function hookStopSignals(): void {
  stopList = stopSignals();
  const stop = new Set<string>(stopList);
  const originalEmit = process.emit as (this: NodeJS.Process, event: string | symbol, ...args: unknown[]) => boolean;
  deliverSignal = (signal) => void originalEmit.call(process, signal, signal);
  process.emit = function emit(this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
    if (adopted.length > 0 && typeof event === 'string' && stop.has(event)) {
      return onStopSignal(event as NodeJS.Signals, () => originalEmit.call(this, event, ...args));
    }
    return originalEmit.call(this, event, ...args);
  } as typeof process.emit;
}

/**
 * Makes `server`'s own close() graceful and, the first time, takes over exit and the stop signals.
 *
 * @example
 * makeGraceful(server); // before server.listen({ fd }) adopts the socket
 */
export function makeGraceful(server: net.Server): void {
  if (adopted.includes(server)) return;
  if (adopted.length === 0) install();
  adopted.push(server);
  let closed = false;
  server.once('close', () => (closed = true));
  const closeIdle = (server as { closeIdleConnections?: () => void }).closeIdleConnections;
  Object.assign(server, {
    close(this: net.Server, cb?: (err?: Error) => void) {
      if (typeof cb === 'function') {
        if (closed) process.nextTick(cb);
        else this.once('close', () => cb());
      }
      closing.add(server);
      void shutdown(server);
      return this;
    },
  });
  if (typeof closeIdle === 'function') {
    Object.assign(server, {
      closeIdleConnections(this: net.Server) {
        if (!closing.has(server)) closeIdle.call(this);
      },
    });
  }
}

function install(): void {
  realExit = process.exit.bind(process) as (code?: number) => never;
  process.exit = function exit(code?: number | string | null): never {
    exitCode ??= toCode(code ?? process.exitCode);
    // Drained (the usual case: the app's stop handler runs after the drain) or forced:
    // exit as Node would, without returning.
    if (signals > 1 || drainDone) return realExit(signals > 1 ? toCode(code) : exitCode);
    if (!exiting) {
      exiting = true;
      void drainAll()
        .then(flushStdio)
        .then(() => realExit(exitCode));
    }
    return undefined as never;
  } as typeof process.exit;
  // A listener of our own, so that a stop signal is caught (Node's default kills the
  // process) even when the app has none.
  for (const signal of stopList) process.on(signal, caught);
  // The master's `stop` (sent instead of the stop signal to a worker that said hello, to
  // hand its keep-alive connections over) is the stop signal for the app: the same drain,
  // with hand-over, then the app's own handlers for the signal it would have received.
  takeStopMessage((how) => {
    const signal = masterStopSignal();
    onStopSignal(signal, () => deliverSignal(signal), how);
  });
}

function caught(): void {
  // The work happens in onStopSignal; this listener only keeps the signal from killing the process.
}

function onStopSignal(signal: NodeJS.Signals, deliver: () => void, how: StopRequest = {}): boolean {
  const own = process.listeners(signal).filter((l) => l !== caught);
  // The master died: its parent-death signal comes once per re-parenting (src/lib/orphan.ts).
  // A repeat is the same stop, unless the app, given the signal, removed its handlers and
  // re-raised it to exit (as NestJS does after its cleanup).
  if (signals > 0 && orphaned() && !(delivered && own.length === 0)) return true;
  // A second stop signal (from the operator, or re-raised by the app after its own
  // cleanup): exit now.
  if (++signals > 1) realExit(128 + (constants.signals[signal] ?? 0));
  void drainAll(how);
  if (own.length === 0) beginShutdown();
  else
    void Promise.race([httpDrained(), drainAll()]).then(() => {
      delivered = true;
      deliver();
    });
  return true;
}

/**
 * Drains every adopted server (once; later calls share the promise), handing HTTP/1.1
 * connections to the new generation when the master's `stop` asked for it.
 */
function drainAll(how: StopRequest = {}): Promise<void> {
  for (const server of adopted) closing.add(server);
  drained ??= drainRegistered(how).then(() => void (drainDone = true));
  return drained;
}

/** Resolves once no adopted server has an HTTP request, keep-alive connection or HTTP/2 session left. */
function httpDrained(): Promise<void> {
  const idle = (server: AnyServer): boolean => {
    const t = trackerOf(server);
    return t === undefined || (t.http1.responses.size === 0 && t.http1.connections.size === 0 && t.sessions.size === 0 && t.streams.size === 0);
  };
  return new Promise((resolve) => {
    const check = (): void => {
      if (adopted.every(idle)) resolve();
      else setTimeout(check, HTTP_DRAINED_POLL_MS).unref();
    };
    check();
  });
}

function toCode(code: number | string | null | undefined): number {
  const n = Number(code ?? 0);
  return Number.isInteger(n) ? n : 1;
}
