/**
 * Every default of the in-app library, in one place. Option TSDoc refers to these names.
 */

/** systemd's SD_LISTEN_FDS_START: inherited sockets start right after stdin, stdout, stderr. */
export const SD_LISTEN_FDS_START = 3;

/** Port bound standalone when neither `options.port` nor env `PORT` is given. */
export const DEFAULT_PORT = 3000;

/**
 * How long shutdown() waits for in-flight work before destroying what is left (ms),
 * standalone. Under the master the default follows its `drainTimeout` instead
 * ({@link DRAIN_TIMEOUT_ENV}, {@link drainDeadline}).
 */
export const DEFAULT_SHUTDOWN_TIMEOUT = 10_000;

/** Environment variable by which the master gives its workers its `drainTimeout` (ms). */
export const DRAIN_TIMEOUT_ENV = 'HITLESS_DRAIN_TIMEOUT';

/**
 * The drain deadline a worker takes by default under a master whose `drainTimeout` is
 * `drainTimeout` ms: that less the time one onShutdown hook may take
 * ({@link DEFAULT_HOOK_TIMEOUT}), at least half of it. So a long response lives as long as
 * the operator's `drainTimeout` allows, and the worker still cuts what is left, reports it
 * and runs its hooks before the master's SIGKILL.
 *
 * @example
 * drainDeadline(30_000); // 25 000
 * drainDeadline(4_000);  //  2 000
 */
export function drainDeadline(drainTimeout: number): number {
  return drainTimeout - Math.min(DEFAULT_HOOK_TIMEOUT, drainTimeout / 2);
}

/**
 * How long an idle keep-alive connection stays open after the drain began (ms). Closing
 * idle connections at once resets requests clients already put on the wire (DESIGN.md,
 * "Facts checked on this machine"); a short grace lets those arrive and be answered.
 */
export const DEFAULT_IDLE_GRACE = 500;

/** Time between the stop signal and the drain, while readiness answers 503 (ms). */
export const DEFAULT_SHUTDOWN_DELAY = 0;

/** Time limit of each onShutdown hook (ms). */
export const DEFAULT_HOOK_TIMEOUT = 5_000;

/**
 * A stop signal this soon after the stop began (ms) is the same stop, not a second press:
 * one Ctrl-C on `npm start` reaches the server twice within a few milliseconds (the
 * terminal signals the whole foreground process group, and npm forwards the signal to its
 * child too). The master applies the same rule to its own stop signals.
 */
export const SAME_STOP_MS = 250;

/** Signals that start the graceful shutdown (plus env HITLESS_STOP_SIGNAL when set). */
export const DEFAULT_STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Window over which a standalone drain closes upgraded (WebSocket) connections (ms): 0, all
 * at once. Under the master the window is its `drain.spread`, given as
 * {@link DRAIN_SPREAD_ENV}.
 */
export const DEFAULT_SPREAD = 0;

/** Environment variable by which the master gives its workers `drain.spread` (ms). */
export const DRAIN_SPREAD_ENV = 'HITLESS_DRAIN_SPREAD';

/**
 * What a spread close leaves before the shutdown deadline (ms): the last close frame goes
 * out at least this long before it, so the client's close can come back before the cut.
 */
export const CLOSE_HANDSHAKE_MARGIN = 1_000;
