/**
 * The worker channel protocol, version 1: every message between the master and a worker,
 * both directions, their types, the one parser and the builders. Zero dependencies, so the
 * worker side (src/lib, the in-app library and the preload) and the master side
 * (src/core) share it; docs/ARCHITECTURE.md, "The worker channel", describes it for
 * workers in other languages.
 *
 * The carrier is Node's IPC channel (JSON, one message a line, on NODE_CHANNEL_FD; the
 * master sets HITLESS_CHANNEL=1 so the worker knows it is the master's): the only public
 * way Node passes file descriptors between processes (SCM_RIGHTS), which connection
 * hand-over needs. Each side's transport is elsewhere (lib/channel.ts for the worker,
 * core/process.ts and core/worker.ts for the master); what travels is defined here.
 *
 * Beside it, the readiness socket (HITLESS_READY_FD) carries sd_notify lines one way, for
 * programs in any language: {@link NOTIFY_READY} and {@link NOTIFY_STATUS}.
 */

/** The channel protocol version, sent in every message as `hitless`. */
export const PROTOCOL = 1;

/** Environment variable by which the master tells a worker that its IPC channel is the master's. */
export const CHANNEL_ENV = 'HITLESS_CHANNEL';

/** The sd_notify line a worker writes to the readiness socket once it serves. */
export const NOTIFY_READY = 'READY=1';
/** Prefix of the sd_notify line carrying a one-line status text (shown in `hitless status`). */
export const NOTIFY_STATUS = 'STATUS=';
/**
 * The start of the STATUS line a worker sends when the app adopted an inherited socket with
 * listen() and has not called ready() yet: the master's ready-timeout message then says
 * to call ready() (src/core/advice.ts), not that the app never listened.
 */
export const ADOPTED_NOT_READY = 'listening on the socket hitless holds, not ready yet';

/** Status classes a `stats` message counts; a final status below 200 counts as 2xx, 600 and above as 5xx. */
export const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/**
 * Upper bounds (inclusive, milliseconds) of the `stats` latency buckets; one more bucket
 * counts everything slower. Fixed by protocol version 1, so histograms from every worker merge.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([
  0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
]);

/** How often a worker reports its `stats`. */
export const STATS_INTERVAL_MS = 1000;

// ── worker → master ────────────────────────────────────────────────────────────────────

/** Sent by `ready()`, before READY=1: this worker can receive handed-over HTTP/1.1 connections for `listeners`. */
export interface HelloMessage {
  hitless: 1;
  type: 'hello';
  pid?: number;
  handover?: boolean;
  listeners?: string[];
  /**
   * Names of every inherited socket it accepts on (absent: it did not say, as a worker of an
   * older library or another language may not): a socket left out is unserved, and the
   * generation is refused at readiness (src/core/listening.ts).
   */
  adopted?: string[];
  /** It also hands a part of its connections over while it keeps serving, when asked by {@link MoveMessage}. */
  moves?: boolean;
}

/**
 * One connection, with its socket handle. Worker → master: handed over at a request
 * boundary, reading stopped. Master → worker: serve it as if just accepted (`returned`: it
 * comes back to the worker that sent it, no other could take it).
 */
export interface ConnMessage {
  hitless: 1;
  type: 'conn';
  listener?: string;
  returned?: boolean;
  /** Worker → master: connections the sender still has to hand over after this one (paces the rest, handover.ts). */
  left?: number;
}

/** The worker's own count of its hand-over: connections it sent, and those it kept. */
export interface HandoverDoneMessage {
  hitless: 1;
  type: 'handover-done';
  handedOver?: number;
  kept?: number;
}

/** The worker's own count of its drain: connections closed gracefully, and destroyed at its deadline. */
export interface DrainedMessage {
  hitless: 1;
  type: 'drained';
  drained?: number;
  forced?: number;
  /** Of `drained`: upgraded (WebSocket) connections this worker closed (1001) or saw closed, not moved. */
  upgraded?: number;
}

/**
 * A draining worker's HTTP work is done (every request answered, every keep-alive connection
 * handed over or closed): it holds only `upgraded` long-lived connections (WebSockets),
 * which it closes on their own schedule (spread, then its deadline). Sent when that first
 * holds, then whenever the number changes. The master no longer makes the reload wait for
 * it (docs/websockets.md).
 */
export interface LingeringMessage {
  hitless: 1;
  type: 'lingering';
  upgraded: number;
}

/**
 * A worker's traffic figures, cumulative since it started (every {@link STATS_INTERVAL_MS}):
 * finished responses by status class, a latency histogram over {@link LATENCY_BOUNDS_MS}
 * (one more bucket for everything slower) and the latencies' sum in ms. Optional, not
 * cumulative: `connections`, the connections it has open now (moved in ones included), and
 * `busy`, the requests it has begun and not yet answered (a canary that holds requests it
 * does not answer is lent no more connections: strategies/canary.ts).
 */
export interface StatsMessage {
  hitless: 1;
  type: 'stats';
  requests: Record<StatusClass, number>;
  latency: number[];
  latencySum: number;
  connections?: number;
  busy?: number;
}

/**
 * The worker's own count of one {@link MoveMessage}: connections it handed over, and those
 * it was to move but kept (busy past `within`, closed meanwhile, or the move was ended).
 */
export interface MoveDoneMessage {
  hitless: 1;
  type: 'move-done';
  moved?: number;
  kept?: number;
}

/**
 * Sent by hitless/ws (the opt-in WebSocket hand-over, docs/websockets.md): this worker
 * rebuilds handed-over `ws` WebSockets for `listeners` (any, when empty) and gives them to
 * the application.
 */
export interface WsHelloMessage {
  hitless: 1;
  type: 'ws-hello';
  listeners?: string[];
}

/**
 * One WebSocket, with its socket handle, moved at a frame boundary (reading stopped).
 * Worker → master: from a draining worker; master → worker: rebuild it and give it to the
 * application (`returned`: it comes back to the worker that sent it, no other could take
 * it; that one closes it with 1001). What the receiving side needs travels with it: the
 * application's own `state` (any JSON), the negotiated subprotocol, the permessage-deflate
 * parameters (only without context takeover either way: see docs/websockets.md), and
 * `head`, the bytes already read from the client that begin its next frame (base64).
 */
export interface WsConnMessage {
  hitless: 1;
  type: 'ws-conn';
  listener?: string;
  state?: unknown;
  protocol?: string;
  deflate?: Record<string, number | boolean>;
  head?: string;
  returned?: boolean;
}

/** Everything a worker may send. */
export type WorkerMessage =
  | HelloMessage | ConnMessage | HandoverDoneMessage | DrainedMessage | LingeringMessage | StatsMessage | WsHelloMessage | WsConnMessage
  | MoveDoneMessage;

// ── master → worker ────────────────────────────────────────────────────────────────────

/**
 * Instead of the stop signal, to a worker that said hello and that the master retires while
 * its listening sockets stay served (a reload with hand-over): drain as on SIGTERM, but
 * without waiting out `shutdownDelay` (no balancer has to learn anything); with `handover`,
 * hand keep-alive connections over first, at most `window` of them sent and not yet
 * `landed` at once. `webSockets: false`: no worker of the next generation takes WebSockets
 * (none said `ws-hello`, or a `hitless upgrade`): hitless/ws does not try to move them
 * (absent: it may, as with an older master; one no worker takes comes back, `returned`).
 */
export interface StopMessage {
  hitless: 1;
  type: 'stop';
  handover?: boolean;
  window?: number;
  webSockets?: boolean;
}

/** One connection the worker sent reached its place (a worker, back, or lost): the next may go. */
export interface LandedMessage {
  hitless: 1;
  type: 'landed';
}

/** One WebSocket the worker sent (`ws-conn`) reached its place: the next may go. */
export interface WsLandedMessage {
  hitless: 1;
  type: 'ws-landed';
}

/**
 * To a serving worker that said hello with `moves` (a canary starting beside it): hand over
 * a part of its kept-alive HTTP/1.1 connections and keep serving the rest — `share` (0..1)
 * of the connections it has now, or `count` of them — each at its next request boundary,
 * never in the middle of a request; at most `window` sent and not yet `landed` at once; a
 * connection not at a boundary within `within` ms stays. Answered by `move-done`. The picks
 * are spread over how much each connection was used; with `recent`, they are the ones that
 * carried a request last (a canary that got no requests on what it was lent is lent the
 * connections a pool reuses first).
 */
export interface MoveMessage {
  hitless: 1;
  type: 'move';
  share?: number;
  count?: number;
  window?: number;
  within?: number;
  recent?: boolean;
}

/** Ends the worker's move now: what it has not sent yet stays (a send under way completes). */
export interface MoveEndMessage {
  hitless: 1;
  type: 'move-end';
}

/** Everything the master may send. */
export type MasterMessage = StopMessage | LandedMessage | ConnMessage | WsConnMessage | WsLandedMessage | MoveMessage | MoveEndMessage;

// ── the parser ─────────────────────────────────────────────────────────────────────────

type Check = (v: unknown) => boolean;
const count: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const positive: Check = (v) => Number.isSafeInteger(v) && (v as number) > 0;
const bool: Check = (v) => typeof v === 'boolean';
const text: Check = (v) => typeof v === 'string';
const texts: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const params: Check = (v) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'boolean' || Number.isSafeInteger(x));
/** What a `ws-conn` carries besides the application's state (which is any JSON). */
const WS_CONN: Record<string, Check> = { listener: text, protocol: text, deflate: params, head: text, returned: bool };
const share: Check = (v) => typeof v === 'number' && v >= 0 && v <= 1;

/** Every message type a sender may use, with the checks of its optional fields. */
const FROM_WORKER: Record<WorkerMessage['type'], Record<string, Check>> = {
  // `pid` is informational (the master knows its workers' pids): not checked.
  hello: { handover: bool, listeners: texts, adopted: texts, moves: bool },
  conn: { listener: text, returned: bool, left: count },
  'handover-done': { handedOver: count, kept: count },
  drained: { drained: count, forced: count, upgraded: count },
  lingering: { upgraded: count },
  stats: { connections: count, busy: count },
  'ws-hello': { listeners: texts },
  'ws-conn': WS_CONN,
  'move-done': { moved: count, kept: count },
};
const FROM_MASTER: Record<MasterMessage['type'], Record<string, Check>> = {
  stop: { handover: bool, window: positive, webSockets: bool },
  landed: {},
  conn: { listener: text, returned: bool },
  'ws-conn': WS_CONN,
  'ws-landed': {},
  move: { share, count, window: positive, within: count, recent: bool },
  'move-end': {},
};

/**
 * The message, when `raw` is a protocol-1 message of a type its sender may use; undefined
 * for anything else (another protocol, an unknown type, garbage), which the receiver
 * ignores (closing a handle that came with it: see {@link closeHandle}).
 *
 * A field of the wrong shape is judged by who sent it. From a worker, the whole message is
 * refused: the master trusts no count or listener it cannot read (a refused `hello` means
 * no hand-over for that worker, a refused `stats` loses nothing as the next carries the
 * totals). From the master, the field is dropped and the rest obeyed: a worker must still
 * stop when told, even if the master's `window` made no sense.
 *
 * @example
 * parseMessage({ hitless: 1, type: 'hello', handover: true }, 'worker'); // the message
 * parseMessage({ hitless: 1, type: 'stop', window: 'x' }, 'master');     // { hitless: 1, type: 'stop' }
 * parseMessage('READY=1', 'worker');                                    // undefined
 */
export function parseMessage(raw: unknown, from: 'worker'): WorkerMessage | undefined;
export function parseMessage(raw: unknown, from: 'master'): MasterMessage | undefined;
export function parseMessage(raw: unknown, from: 'worker' | 'master'): WorkerMessage | MasterMessage | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const m = raw as Record<string, unknown>;
  const table: Record<string, Record<string, Check>> = from === 'worker' ? FROM_WORKER : FROM_MASTER;
  if (m.hitless !== PROTOCOL || typeof m.type !== 'string' || !Object.hasOwn(table, m.type)) return undefined;
  const checks = table[m.type] as Record<string, Check>;
  if (from === 'worker') {
    for (const [key, ok] of Object.entries(checks)) if (m[key] !== undefined && !ok(m[key])) return undefined;
    if (m.type === 'stats' && !validStats(m)) return undefined;
    if (m.type === 'lingering' && m.upgraded === undefined) return undefined;
    return m as unknown as WorkerMessage;
  }
  const kept: Record<string, unknown> = { ...m };
  for (const [key, ok] of Object.entries(checks)) if (kept[key] !== undefined && !ok(kept[key])) delete kept[key];
  return kept as unknown as MasterMessage;
}

function validStats(m: Record<string, unknown>): boolean {
  const r = m.requests as Record<string, unknown> | null | undefined;
  if (typeof r !== 'object' || r === null || !STATUS_CLASSES.every((c) => count(r[c]))) return false;
  if (!Array.isArray(m.latency) || m.latency.length !== LATENCY_BOUNDS_MS.length + 1 || !m.latency.every(count)) return false;
  return typeof m.latencySum === 'number' && Number.isFinite(m.latencySum) && m.latencySum >= 0;
}

// ── builders (so no side writes a message by hand) ─────────────────────────────────────

/** The body of a message without its version field (what the builders and the worker's send() take). */
export type Body<M> = M extends unknown ? Omit<M, 'hitless'> : never;

/**
 * Adds the protocol version to a message body.
 *
 * @example
 * message({ type: 'landed' }); // { hitless: 1, type: 'landed' }
 */
export function message<M extends WorkerMessage | MasterMessage>(body: Body<M>): M {
  return { hitless: PROTOCOL, ...body } as M;
}

/**
 * The master's `stop` asking for hand-over (`window`: at most that many connections in
 * transit; undefined: not paced; `webSockets` false: no receiver takes WebSockets).
 *
 * @example
 * stopMessage(4); // { hitless: 1, type: 'stop', handover: true, window: 4 }
 * stopMessage(4, false); // { hitless: 1, type: 'stop', handover: true, window: 4, webSockets: false }
 */
export function stopMessage(window: number | undefined, webSockets = true): StopMessage {
  return message<StopMessage>({ type: 'stop', handover: true, ...(window === undefined ? {} : { window }), ...(webSockets ? {} : { webSockets: false }) });
}

/**
 * The master's `move`: `share` (0..1) or `count` of the worker's connections, paced by
 * `window`, those still busy after `within` ms kept.
 *
 * @example
 * moveMessage({ share: 0.33 }, 4, 5000); // { hitless: 1, type: 'move', share: 0.33, window: 4, within: 5000 }
 * moveMessage({ count: 1 }, 4, 5000, true); // … the connection that carried a request last
 */
export function moveMessage(ask: { share: number } | { count: number }, window: number, within: number, recent = false): MoveMessage {
  return message<MoveMessage>({ type: 'move', ...ask, window, within, ...(recent ? { recent: true } : {}) });
}

/**
 * A `conn` message for a connection on `listener` (`returned`: going back to its sender).
 *
 * @example
 * connMessage('http', true); // { hitless: 1, type: 'conn', listener: 'http', returned: true }
 */
export function connMessage(listener: string | undefined, returned = false): ConnMessage {
  return message<ConnMessage>({ type: 'conn', ...(listener === undefined ? {} : { listener }), ...(returned ? { returned: true } : {}) });
}

/**
 * Closes a raw handle (or a net object) that came with a message and will not be used:
 * every handle ends in exactly one place, and one nobody takes would stay open in the
 * receiving process for its whole life.
 *
 * @example
 * if (parseMessage(raw, 'worker') === undefined) closeHandle(handle);
 */
export function closeHandle(handle: unknown): void {
  const target = handle as { close?: () => void; destroy?: () => void } | null | undefined;
  try {
    if (typeof target?.destroy === 'function') target.destroy();
    else target?.close?.();
  } catch {
    // Already closed.
  }
}
