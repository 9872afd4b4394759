/**
 * Public option and result types of the in-app library. Optional option fields also take
 * `undefined` (read as the default), so they type-check under `exactOptionalPropertyTypes`
 * (on in `tsc --init`'s config) with values like `process.env.HOST`.
 */
import type { AddressInfo, Server } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Any server hitless can adopt and drain: `net.Server` and everything built on it
 * (`http.Server`, `https.Server`, `http2` h2c and secure servers).
 */
export type AnyServer = Server;

/** Options of {@link track}. */
export interface TrackOptions {
  /**
   * Install the SIGTERM/SIGINT handlers that drain registered servers and exit 0.
   * @default true
   */
  signals?: boolean | undefined;
}

/** Options of {@link listen}. */
export interface ListenOptions extends TrackOptions {
  /**
   * Name of the inherited socket to adopt (one of env `LISTEN_FDNAMES`).
   * @default the first inherited socket
   */
  name?: string | undefined;
  /**
   * Standalone fallback port, used when no socket was inherited.
   * @default env `PORT`, else {@link DEFAULT_PORT} (3000)
   */
  port?: number | undefined;
  /**
   * Standalone fallback host.
   * @default Node's choice (all interfaces)
   */
  host?: string | undefined;
  /**
   * Standalone fallback Unix socket path (instead of port/host).
   * @default none
   */
  path?: string | undefined;
  /**
   * Standalone listen backlog.
   * @default Node's default (511)
   */
  backlog?: number | undefined;
  /**
   * Options the signal handlers use when they drain this server.
   * @default {} (see {@link ShutdownOptions})
   */
  shutdown?: ShutdownOptions | undefined;
  /**
   * Time between the stop signal and the drain (ms). During it {@link isShuttingDown} is
   * true and the readiness handler answers 503 while the listener still accepts, so a load
   * balancer has time to notice. The process-wide delay is the largest one given.
   * @default {@link DEFAULT_SHUTDOWN_DELAY} (0)
   */
  shutdownDelay?: number | undefined;
}

/** What {@link listen} did. */
export interface ListenResult {
  /** True when the socket was inherited from the master (or systemd). */
  inherited: boolean;
  /** The adopted file descriptor (inherited only). */
  fd?: number;
  /** The adopted socket's name from `LISTEN_FDNAMES` (inherited only). */
  name?: string;
  /** `server.address()` once listening. */
  address: AddressInfo | string | null;
}

/** Options of {@link shutdown}. */
export interface ShutdownOptions {
  /**
   * Deadline (ms): what is still open then is destroyed and counted as forced. During a
   * hand-over (under the master), connections still waiting for their turn to move are not
   * cut: the deadline then waits until they have moved (the master's `drainTimeout`,
   * counted from the hand-over's last progress, bounds that).
   * @default under the master, its `drainTimeout` less 5 s (one onShutdown hook's time),
   * at least half of it (env `HITLESS_DRAIN_TIMEOUT`; 25 000 for the default 30 s), counted
   * like drainTimeout from the last connection handed over while a hand-over moves them;
   * standalone {@link DEFAULT_SHUTDOWN_TIMEOUT} (10 000)
   */
  timeout?: number | undefined;
  /**
   * How long an idle keep-alive connection may stay idle after the drain began (ms).
   * @default {@link DEFAULT_IDLE_GRACE} (500)
   */
  idleGrace?: number | undefined;
  /**
   * Called once for each upgraded connection at its turn in the drain (see `spread`), so the
   * application closes it its own way; given, it replaces hitless's own close. A no-op
   * leaves upgraded connections open until the deadline.
   * @default none: hitless closes each WebSocket (RFC 6455) with 1001 "going away" at a
   * frame boundary — with `ws`'s own `close()` when the socket carries a `ws` WebSocket —
   * and leaves other upgraded protocols to the deadline (docs/websockets.md)
   */
  onUpgrade?: ((socket: Duplex) => void) | undefined;
  /**
   * Window (ms) over which upgraded connections are sent away, evenly, so their clients do
   * not all reconnect in the same instant; capped at `timeout` minus 1 s (the client's
   * close must come back before the cut). 0: all at once.
   * @default the master's `drain.spread` (env `HITLESS_DRAIN_SPREAD`, 5 s by default) under
   * the master; standalone {@link DEFAULT_SPREAD} (0)
   */
  spread?: number | undefined;
}

/** Counts of one kind of outcome. `connections` counts TCP connections of every kind. */
export interface ShutdownCounts {
  /** HTTP/1 requests and HTTP/2 streams. */
  requests: number;
  /** TCP connections (also those carrying HTTP/2 sessions or upgraded sockets). */
  connections: number;
  /** HTTP/2 sessions. */
  sessions: number;
  /** Upgraded (WebSocket) connections. */
  upgraded: number;
}

/** What {@link shutdown} did. */
export interface ShutdownResult {
  /** What finished by itself (or was closed gracefully) before the deadline. */
  drained: ShutdownCounts;
  /** What was destroyed at the deadline. */
  forced: ShutdownCounts;
  /** True when the deadline passed with work left. */
  timedOut: boolean;
  /** Time from the start of the drain to its end (ms). */
  durationMs: number;
  /**
   * Connections handed over to the new generation instead of closed (under the master's
   * `stop` with hand-over only; 0 otherwise). They count neither as drained nor as forced.
   */
  handedOver: number;
}

/** Options of {@link serve}: listen, shutdown and lifecycle options together. */
export interface ServeOptions extends Omit<ListenOptions, 'shutdown'>, ShutdownOptions {}

/**
 * What {@link serve} returns. `S`: the server's type — `http.Server` when serve() made it
 * from a handler, else the type of the server given.
 */
export interface ServeHandle<S extends AnyServer = AnyServer> {
  /** The server (created from the handler, or the one given). */
  server: S;
  /** `server.address()` once listening. */
  address: AddressInfo | string | null;
  /** Whether the socket was inherited from the master. */
  inherited: boolean;
  /** Drain this server gracefully (same as `shutdown(server, options)`). */
  close(): Promise<ShutdownResult>;
}

/** What {@link workerInfo} returns. */
export interface WorkerInfo {
  /** True when running under the hitless master (HITLESS_READY_FD or HITLESS_GENERATION set). */
  managed: boolean;
  /** Generation number (env HITLESS_GENERATION). */
  generation?: number;
  /** Worker slot in its generation (env HITLESS_WORKER). */
  worker?: number;
  /** Release id (env HITLESS_RELEASE), when the master runs releases. */
  release?: string;
}
