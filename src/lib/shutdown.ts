/**
 * shutdown(): Go's http.Server.Shutdown for node:http, https and http2. Stops accepting by
 * closing only the listening handle, answers every HTTP/1 response from then on with
 * `Connection: close`, closes keep-alive connections once they stayed idle for `idleGrace`,
 * sends HTTP/2 GOAWAY, announces upgraded sockets, resolves as soon as nothing is left, and
 * destroys what remains at `timeout`. Under the master's `stop` with hand-over, plain HTTP/1.1
 * connections move to the new generation instead of closing (handover.ts).
 */
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Handover } from './handover.js';
import { CLOSE_HANDSHAKE_MARGIN } from './defaults.js';
import { markShuttingDown } from './health.js';
import { status } from './ready.js';
import { checkServer, resolveShutdownOptions, type ResolvedShutdownOptions } from './options.js';
import { arrivalOf, isPlainHttp, listenerName, relaysOf } from './registry.js';
import { upgradeMover } from './movers.js';
import { instrument, trackerOf, type DrainHooks, type Tracker } from './track.js';
import type { AnyServer, ShutdownCounts, ShutdownOptions, ShutdownResult } from './types.js';

const running = new WeakMap<AnyServer, Promise<ShutdownResult>>();

const zero = (): ShutdownCounts => ({ requests: 0, connections: 0, sessions: 0, upgraded: 0 });

/**
 * Drains `server` gracefully and resolves with what happened. Calling it again returns the
 * same promise. Exact for servers instrumented by listen(), serve() or track() before their
 * first connection; for others, connections opened before the call cannot be enumerated,
 * so after `idleGrace` it falls back to `server.closeIdleConnections()` and waits for the
 * server's 'close' event (counts then cover only connections seen after the call). A bad
 * server or option rejects with ERR_INVALID_OPTION.
 *
 * @example
 * const result = await shutdown(server, { timeout: 5000 });
 * if (result.timedOut) logger.warn('forced', result.forced);
 */
export function shutdown(server: AnyServer, options?: ShutdownOptions): Promise<ShutdownResult> {
  const existing = running.get(server);
  if (existing !== undefined) return existing;
  // A bad argument rejects, as listen() and serve() do: `.catch()` sees it too.
  try {
    checkServer('shutdown()', server, 'pass the server you listen() on');
    return drainServer(server, resolveShutdownOptions('shutdown()', options));
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * shutdown() with resolved options (internal); with `handover`, the server's HTTP/1.1
 * connections are handed over when it is a plain http.Server the lifecycle knows by name,
 * and its WebSockets too (hitless/ws) unless `webSockets` is false (no receiver takes them).
 */
export function drainServer(server: AnyServer, options: ResolvedShutdownOptions, handover?: Handover, webSockets = true): Promise<ShutdownResult> {
  const existing = running.get(server);
  if (existing !== undefined) return existing;
  markShuttingDown();
  const known = trackerOf(server);
  const listener = handover !== undefined && known !== undefined && isPlainHttp(server) ? listenerName(server) : undefined;
  const tracker = known ?? instrument(server);
  const promise = drain(server, tracker, known === undefined, options, listener === undefined ? undefined : { handover: handover!, listener, webSockets });
  running.set(server, promise);
  return promise;
}

/**
 * How this drain moves upgraded connections: only in a hand-over drain whose receivers take
 * WebSockets, and only with a mover registered (hitless/ws). Otherwise they are never paused
 * for a move: each is served until its turn in the spread.
 */
function moverFor(moving: { listener: string; webSockets: boolean } | undefined): DrainHooks['moveUpgraded'] {
  const mover = upgradeMover();
  if (moving === undefined || !moving.webSockets || mover === undefined) return undefined;
  const { listener } = moving;
  return async (sockets, moved) => {
    // A WebSocket a relay accepted goes as the socket it arrived on, like an HTTP connection
    // (handover.ts): one to an address a reload removed then comes back, served here until its turn.
    const byListener = new Map<string, Duplex[]>();
    for (const socket of sockets) {
      const name = arrivalOf(socket) ?? listener;
      byListener.set(name, [...(byListener.get(name) ?? []), socket]);
    }
    const stay: Duplex[] = [];
    for (const [name, group] of byListener) stay.push(...(await mover.move(group, name, moved)));
    return stay;
  };
}

/**
 * The window for sending upgraded connections away, within the deadline: the last close
 * leaves {@link CLOSE_HANDSHAKE_MARGIN} for the client's answer before the cut.
 */
function spreadWithin(options: ResolvedShutdownOptions): number {
  return Math.min(options.spread, Math.max(0, options.timeout - CLOSE_HANDSHAKE_MARGIN));
}

function drain(
  server: AnyServer,
  tracker: Tracker,
  late: boolean,
  options: ResolvedShutdownOptions,
  moving: { handover: Handover; listener: string; webSockets: boolean } | undefined,
): Promise<ShutdownResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const drained = zero();
    let handedOver = 0;
    let done = false;
    let serverClosed = false;
    const timers: NodeJS.Timeout[] = [];

    const finish = (forced: ShutdownCounts, timedOut: boolean): void => {
      if (done) return;
      done = true;
      for (const timer of timers) clearTimeout(timer);
      tracker.endDrain();
      resolve({ drained, forced, timedOut, durationMs: Math.round(performance.now() - started), handedOver });
    };
    const check = (): void => {
      if (!done && tracker.isEmpty() && (!late || serverClosed)) finish(zero(), false);
    };

    if (late) {
      server.once('close', () => {
        serverClosed = true;
        check();
      });
    }
    // Only the listening handle: http.Server#close would also run closeIdleConnections()
    // (Node >= 19), resetting requests clients already put on the wire.
    const wasListening = server.listening;
    if (wasListening) net.Server.prototype.close.call(server);
    // serve()'s relays for the other inherited sockets stop accepting with it (relay.ts).
    for (const relay of relaysOf(server)) if (relay.listening) relay.close();
    if (!wasListening && late) {
      // Never listened, or closed earlier: wait only if connections we never saw remain
      // ('close' is emitted again when the last of them ends).
      server.getConnections((_err, count) => {
        if (!count) serverClosed = true;
        check();
      });
    }
    tracker.beginDrain({
      idleGrace: options.idleGrace,
      onUpgrade: options.onUpgrade,
      spread: spreadWithin(options),
      moveUpgraded: moverFor(moving),
      closed(kind) {
        drained[kind]++;
        check();
      },
      handover: moving?.handover.sinkFor(tracker.http1, moving.listener),
      moved() {
        handedOver++;
      },
      movedClosed: check,
    });

    if (late) {
      const idle = setTimeout(() => (server as { closeIdleConnections?: () => void }).closeIdleConnections?.(), options.idleGrace);
      idle.unref();
      timers.push(idle);
    }
    const deadline = (): void => {
      if (done) return;
      // A deadline that follows the master's drainTimeout counts, like it, from the last
      // connection handed over: a hand-over still moving connections (busy ones move once
      // their response is out) is not cut while the master would let it go on.
      const moved = options.masterDrainTimeout === undefined ? undefined : moving?.handover.lastProgress();
      if (moved !== undefined && moved + options.timeout > Date.now()) {
        timers.push(setTimeout(deadline, moved + options.timeout - Date.now()));
        return;
      }
      // Connections waiting for their turn in a hand-over are idle, at a request boundary,
      // and paced by the master: on a slow machine their turn only comes later. Cutting
      // them here would lose them for nothing, so the deadline waits until none waits any
      // more (the master's drainTimeout, counted from the hand-over's last progress, bounds
      // that). What is still open then is forced as usual.
      const waiting = moving?.handover.waiting() ?? 0;
      if (waiting > 0) {
        sayStatus(`draining: past the ${options.timeout} ms deadline, ${waiting} connection${waiting === 1 ? '' : 's'} still waiting for the hand-over`);
        moving!.handover.whenNothingWaits(deadline);
        return;
      }
      // A connection whose send is under way is left to it (closed here once written).
      const forced = tracker.forceAll(moving?.handover.sending());
      if (!late) return finish(forced, true);
      server.getConnections((_err, count) => {
        forced.connections = Math.max(forced.connections, count ?? 0);
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        finish(forced, true);
      });
    };
    timers.push(setTimeout(deadline, options.timeout));
    check();
  });
}

/** A STATUS line for the master (no-op standalone); a bad readiness fd must not break the drain. */
function sayStatus(text: string): void {
  try {
    status(text);
  } catch {
    // ERR_READY_FD: reported by ready() already
  }
}
