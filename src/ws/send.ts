/**
 * The sending side of the WebSocket hand-over (hitless/ws, issue 24): in a hand-over drain,
 * each `ws` WebSocket the application registered goes to the master at a frame boundary,
 * with the application's state and the negotiated parameters (`ws-conn`); the master passes
 * it to the next generation. Connections that cannot move (permessage-deflate with context
 * takeover, paused, a frame or fragmented message that does not end within
 * {@link MOVE_TRY_MS}, a state that is not JSON, a send the master did not take) are given
 * back to the drain, which closes them with 1001 (goaway.ts).
 *
 * One socket at a time: reading stops first (what the kernel holds from then on travels
 * with the fd), then both directions must stand between two frames; else reading resumes
 * and it is tried again a moment later. At most {@link MOVE_WINDOW} moved WebSockets wait
 * in the master for their new worker at once (`ws-landed` frees a place), so the others
 * keep being served here meanwhile.
 */
import type { Duplex } from 'node:stream';
import { onChannelMessage, sendHandle } from '../lib/channel.js';
import type { TcpHandle } from '../lib/boundary.js';
import { deflateParams, detach, incomingBoundary, outgoingBoundary, type WsInternals } from './internals.js';

/** How long one WebSocket may take to stand at a frame boundary before it is closed instead (ms). */
export const MOVE_TRY_MS = 2000;
/** Moved WebSockets waiting in the master for a new worker at once. */
export const MOVE_WINDOW = 4;
/** Pause between two rounds over WebSockets that were inside a frame (ms). */
const RETRY_MS = 5;

interface SocketInternals extends Duplex {
  _handle: TcpHandle | null;
}

/** What the sender needs of the application's registration (index.ts). */
export interface MoveSource {
  serialize(ws: WsInternals): unknown;
  busy?(ws: WsInternals): boolean;
  moved?(ws: WsInternals): void;
  /** The WebSocket moved away: it leaves the registration and its server's `clients`. */
  forget(ws: WsInternals): void;
}

type Try = 'moved' | 'later' | 'never';

/** The process's one sender (a process drains once). */
export class WebSocketSender {
  #inTransit = 0;
  #room: (() => void) | undefined;
  /** Waiting until nothing is in transit (every moved WebSocket landed). */
  #landedAll: Array<() => void> = [];
  #active = 0;

  constructor() {
    onChannelMessage('ws-landed', () => {
      if (this.#inTransit > 0) this.#inTransit--;
      const wake = this.#room;
      this.#room = undefined;
      wake?.();
      if (this.#inTransit === 0) for (const done of this.#landedAll.splice(0)) done();
    });
  }

  /** True while WebSockets are being moved (the drain does not report `lingering` yet). */
  busy(): boolean {
    return this.#active > 0;
  }

  /**
   * Moves `items` (a WebSocket each, with the registration it belongs to) as `listener`;
   * `moved` is called for each socket the master took. Resolves with the sockets that stay,
   * once every moved one landed (`ws-landed`): one the master gives back arrives before its
   * `ws-landed`, so it is this process's again by then (adopt.ts closes it with 1001).
   */
  async move(items: Array<{ ws: WsInternals; source: MoveSource }>, listener: string, moved: (socket: Duplex) => void): Promise<Duplex[]> {
    this.#active++;
    const rest: Duplex[] = [];
    const since = new Map<WsInternals, number>();
    let queue = items;
    try {
      while (queue.length > 0) {
        const later: typeof items = [];
        for (const item of queue) {
          await this.#hasRoom();
          const socket = item.ws._socket;
          const outcome = socket == null || socket.destroyed ? 'never' : await this.#tryOne(item, listener, moved);
          const first = since.get(item.ws) ?? Date.now();
          since.set(item.ws, first);
          if (outcome === 'later' && Date.now() - first < MOVE_TRY_MS) later.push(item);
          else if (outcome !== 'moved' && socket != null) rest.push(socket);
        }
        queue = later;
        if (queue.length > 0) await new Promise((r) => setTimeout(r, RETRY_MS));
      }
      if (this.#inTransit > 0) await new Promise<void>((resolve) => this.#landedAll.push(resolve));
    } finally {
      this.#active--;
    }
    return rest;
  }

  #hasRoom(): Promise<void> {
    if (this.#inTransit < MOVE_WINDOW) return Promise.resolve();
    return new Promise<void>((resolve) => (this.#room = resolve)).then(() => this.#hasRoom());
  }

  async #tryOne({ ws, source }: { ws: WsInternals; source: MoveSource }, listener: string, moved: (socket: Duplex) => void): Promise<Try> {
    const out = outgoingBoundary(ws);
    if (out !== undefined) return 'never' in out ? 'never' : 'later';
    if (source.busy?.(ws) === true) return 'later';
    const socket = ws._socket as SocketInternals;
    const handle = socket._handle;
    if (handle == null) return 'never';
    // Stop reading first: what the kernel holds from now on travels with the fd.
    const wasReading = handle.reading !== false;
    handle.reading = false;
    handle.readStop();
    const resume = (): void => {
      if (!wasReading) return;
      handle.reading = true;
      handle.readStart();
    };
    const incoming = incomingBoundary(ws);
    if ('later' in incoming) {
      resume();
      return 'later';
    }
    let state: unknown;
    try {
      state = source.serialize(ws);
      JSON.stringify(state); // what cannot travel as JSON fails here, not in the channel
    } catch {
      resume();
      return 'never';
    }
    const deflate = deflateParams(ws) ?? undefined;
    const message = {
      type: 'ws-conn' as const,
      listener,
      ...(state === undefined ? {} : { state }),
      ...(ws.protocol ? { protocol: ws.protocol } : {}),
      ...(deflate ? { deflate } : {}),
      ...(incoming.head.length > 0 ? { head: incoming.head.toString('base64') } : {}),
    };
    // ws lets go first (the application's sends from now on are refused, not written), then,
    // like Node's own net.Socket hand-over, the socket loses its handle: nothing here can
    // touch the connection while the master takes it.
    const reattach = detach(ws);
    socket._handle = null;
    // Counted in transit in the acknowledgement's own tick, not after the await: the master's
    // `ws-landed` can arrive in the same read of the channel as Node's NODE_HANDLE_ACK, and Node
    // emits both before any promise continuation runs (seen on a busy machine: uncounted, the
    // landing was lost, the drain waited for it until its deadline and the client got 1006).
    const received = await new Promise<boolean>((resolve) => sendHandle(message, handle, (ok) => {
      if (ok) this.#inTransit++;
      resolve(ok);
    }));
    if (!received) {
      if (socket.destroyed) handle.close(); // destroyed without its handle meanwhile (the deadline)
      else {
        socket._handle = handle;
        reattach();
        resume();
      }
      return 'never';
    }
    source.forget(ws);
    moved(socket);
    try {
      source.moved?.(ws);
    } catch {
      // The application's clean-up failed; the connection lives on in the next generation.
    }
    // Close this process's fd only; the receiver holds the connection.
    if (socket.destroyed) handle.close();
    else {
      socket._handle = handle;
      socket.destroy();
    }
    return 'moved';
  }
}
