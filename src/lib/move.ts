/**
 * A move: the master asks this process, which keeps serving, to hand over a part of its
 * kept-alive HTTP/1.1 connections (a canary starting beside it takes them: issue 18). The
 * master's `move` names a `share` of the connections open now, or a `count`; this picks
 * that many among the plain HTTP servers registered with the library (the preload registers
 * the ones it adopted, so unmodified apps take part), spread over how much each is used
 * ({@link spreadPicks}), and hands each over at its next request boundary through the
 * process's courier (handover.ts), paced by the master's `window`. Every other connection is left alone: no `Connection: close`, no
 * close. A picked connection still busy after `within` ms stays (a request is never cut or
 * moved half-read), as do the picks not yet sent when the master says `move-end` or the
 * process begins to stop. `move-done` reports the counts, once per move.
 */
import { canMove, type Http1Connection } from './boundary.js';
import { send } from './channel.js';
import { Handover } from './handover.js';
import type { HandoverSink, Http1Connections } from './http1.js';
import type { MoveMessage } from './protocol.js';
import { isPlainHttp, listenerName, registeredServers } from './registry.js';
import { trackerOf } from './track.js';

/** How long a picked connection may stay busy before it stays here, when the master names no `within`. */
export const MOVE_WITHIN_MS = 5000;

interface Pick {
  owner: Http1Connections;
  conn: Http1Connection;
}

/** The move under way, if any (one at a time: a new `move` ends the one before). */
let current: Move | undefined;

class Move {
  private done = false;
  /** Ended (`within` passed, `move-end`, a stop): only a send under way is still waited for. */
  private ended = false;
  private readonly timer: NodeJS.Timeout;
  private readonly unwatch: () => void;
  private readonly sinks = new Map<Http1Connections, HandoverSink>();

  constructor(
    private readonly handover: Handover,
    private readonly picks: Pick[],
    within: number,
  ) {
    this.unwatch = handover.watch(() => this.check());
    this.timer = setTimeout(() => this.end(), within);
    // A move never keeps the process alive.
    this.timer.unref();
  }

  /** Starts sending: each owner's picks leave through the courier, the idle ones now. */
  begin(): void {
    const byOwner = new Map<Http1Connections, Http1Connection[]>();
    for (const { owner, conn } of this.picks) byOwner.set(owner, [...(byOwner.get(owner) ?? []), conn]);
    for (const [owner, conns] of byOwner) {
      const sink = this.handover.sinkFor(owner, nameOf(owner));
      this.sinks.set(owner, sink);
      owner.pick(conns, sink);
    }
    this.check();
  }

  /** Keeps every pick not sent yet (a send under way completes), then reports once that one landed here or there. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const { owner, conn } of this.picks) if (!this.handover.isSending(conn)) owner.keep(conn);
    this.check();
  }

  private check(): void {
    if (this.done) return;
    // Once ended, a drain may have picked the same connections again: they are its own.
    if (this.picks.some(({ conn }) => (this.ended ? this.handover.isSending(conn) : conn.movable))) return;
    this.done = true;
    clearTimeout(this.timer);
    this.unwatch();
    for (const [owner, sink] of this.sinks) owner.endMove(sink);
    if (current === this) current = undefined;
    const moved = this.picks.filter(({ owner, conn }) => owner.wasMoved(conn.socket)).length;
    send({ type: 'move-done', moved, kept: this.picks.length - moved });
  }
}

const owners = new WeakMap<Http1Connections, string>();
const nameOf = (owner: Http1Connections): string => owners.get(owner) ?? '';

/**
 * The master's `move` (internal; lifecycle.ts routes it here): picks the connections and
 * starts handing them over. Answers `move-done` with zeros when nothing can move (no
 * channel, the process is stopping, no plain HTTP server, nothing asked).
 *
 * @example
 * startMove({ hitless: 1, type: 'move', share: 0.33, window: 4, within: 5000 });
 */
export function startMove(message: MoveMessage): void {
  current?.end();
  const handover = Handover.possible() ? Handover.forMove(message.window) : undefined;
  const candidates: Pick[] = [];
  for (const [server] of registeredServers()) {
    const tracker = trackerOf(server);
    const name = isPlainHttp(server) ? listenerName(server) : undefined;
    if (tracker === undefined || name === undefined) continue;
    owners.set(tracker.http1, name);
    for (const conn of tracker.http1.connections.values()) {
      if (!conn.movable && !conn.queued && canMove(conn)) candidates.push({ owner: tracker.http1, conn });
    }
  }
  const wanted = message.count ?? Math.round((message.share ?? 0) * candidates.length);
  if (handover === undefined || handover.abandoned || wanted === 0 || candidates.length === 0) {
    send({ type: 'move-done', moved: 0, kept: 0 });
    return;
  }
  const picks = message.recent === true ? recentPicks(candidates, wanted) : spreadPicks(candidates, wanted);
  const move = new Move(handover, picks, message.within ?? MOVE_WITHIN_MS);
  current = move;
  move.begin();
}

/**
 * `wanted` of `candidates`, spread evenly over them ranked by the requests each carried, so
 * the picks carry about their share of the traffic too. Clients do not use their
 * connections alike: a proxy's upstream pool reuses the connection it released last (nginx),
 * so a few carry nearly every request and the rest sit idle; the idle ones alone would give
 * a canary its share of connections and none of the requests (seen behind nginx on a busy
 * machine), the busiest alone all of them. Idle picks leave at once, busy ones at the end
 * of their response.
 *
 * @example
 * spreadPicks(conns, 2); // of 6 ranked a..f by use: b and e (every third, from the middle)
 */
export function spreadPicks<T extends { conn: Pick['conn'] }>(candidates: T[], wanted: number): T[] {
  const ranked = [...candidates].sort((a, b) => b.conn.requests - a.conn.requests);
  const n = Math.min(wanted, ranked.length);
  // The middle of each of n equal strata of the ranking.
  return Array.from({ length: n }, (_, i) => ranked[Math.floor(((i + 0.5) * ranked.length) / n)]!);
}

/**
 * The `wanted` candidates that began a request last. A pool that reuses the connection it
 * released last and is rarely busy (nginx's upstream keepalive, Node's own http.Agent)
 * sends nearly everything over one or two connections; those are the ones a canary that
 * got nothing on its spread picks must be lent (the master's `move` with `recent`).
 *
 * @example
 * recentPicks(conns, 1); // the connection that carried this process's latest request
 */
export function recentPicks<T extends { conn: Pick['conn'] }>(candidates: T[], wanted: number): T[] {
  return [...candidates].sort((a, b) => b.conn.lastUse - a.conn.lastUse).slice(0, Math.max(0, wanted));
}

/**
 * Ends the move under way, if any (the master's `move-end`, or the process begins to stop):
 * picks not sent yet stay here and serve on.
 *
 * @example
 * endMove(); // before a drain, so the drain's rules apply to every connection
 */
export function endMove(): void {
  current?.end();
}
