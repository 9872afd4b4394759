/**
 * hitless/ws: WebSockets that survive reloads (issue 24), opt-in. On a reload with hand-over,
 * each WebSocket of a registered `ws` server moves to the new generation at a frame
 * boundary — the socket itself, the application's state for it (`serialize`) and what was
 * negotiated — and the new worker rebuilds it and gives it to the application (`adopt`):
 * the client sees nothing, not even a close. What cannot move is closed with 1001 as without
 * it. docs/websockets.md says what the application must carry and what it cannot.
 *
 * A separate entry point with `ws` (8.18 or later) as an optional peer dependency: the
 * in-app library (`hitless`) never imports it. It works with the library's drain (servers
 * given to listen(), serve() or track(), of the same hitless installation).
 */
import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { channelEnabled, onChannelMessage, send } from '../lib/channel.js';
import { wsOf } from '../lib/goaway.js';
import { setUpgradeMover } from '../lib/movers.js';
import { holdLingering } from '../lib/progress.js';
import { checkServer, invalid, knownKeys, object } from '../lib/options.js';
import { receiveWebSocket, type AdoptTarget } from './adopt.js';
import type { WsInternals } from './internals.js';
import { WebSocketSender, type MoveSource } from './send.js';

export { MOVE_TRY_MS, MOVE_WINDOW } from './send.js';

/** Options of {@link moveWebSockets}. `S` is the state the application carries per connection. */
export interface MoveWebSocketsOptions<S> {
  /**
   * The state of one connection, as JSON (what `adopt` gets in the next generation). Called
   * in the old worker once reading stopped at a frame boundary: every message received so
   * far has been handled. A throw (or a value JSON cannot carry) keeps the connection here,
   * where it is closed with 1001.
   */
  serialize(ws: WebSocket): S;
  /**
   * A connection moved here from an older worker: set it up as your 'connection' handler
   * would (listeners, registries), with its state. It is already in `wss.clients`. A throw
   * closes it with 1011. Also called in the old worker for one that came back (no new worker
   * took it), after `moved`: it is served here again until its close 1001 at its turn.
   */
  adopt(ws: WebSocket, state: S): void;
  /**
   * Optional: true while this connection has work in flight whose reply is not sent yet (a
   * reply written after the move would be lost): it is tried again a moment later, and
   * after {@link MOVE_TRY_MS} of tries it stays, and is closed with 1001 at its turn in the
   * drain's spread window, which begins once the moves are over (as for what cannot move).
   */
  busy?: ((ws: WebSocket) => boolean) | undefined;
  /**
   * Optional: in the old worker, after the connection moved: release what it held here. The
   * moved WebSocket emits no 'close' (the connection lives on), its sends from now on fail,
   * and it is no longer in `wss.clients`.
   */
  moved?: ((ws: WebSocket) => void) | undefined;
  /** The http server the WebSockets arrive on, when `wss` was made with `noServer` (default: `wss.options.server`). */
  server?: http.Server | undefined;
}

interface Registration<S> extends MoveSource, AdoptTarget {
  server: http.Server;
}

const registrations: Registration<unknown>[] = [];
/** WebSockets of a registered server (accepted, or adopted here). */
const ours = new WeakMap<WebSocket, Registration<unknown>>();
let sender: WebSocketSender | undefined;

/**
 * Lets the WebSockets of `wss` move to the next generation on a reload instead of closing.
 * Call it once per server, before the worker announces readiness. Returns a function that
 * unregisters it.
 *
 * @example
 * const wss = new WebSocketServer({ server });
 * moveWebSockets(wss, {
 *   serialize: (ws) => ({ user: users.get(ws) }),
 *   adopt: (ws, state) => { users.set(ws, state.user); ws.on('message', onMessage); },
 * });
 * wss.on('connection', (ws) => ws.on('message', onMessage));
 * await listen(server);
 * ready();
 */
export function moveWebSockets<S>(wss: WebSocketServer, options: MoveWebSocketsOptions<S>): () => void {
  const given = wss as unknown as { on?: unknown; options?: unknown } | null;
  if (given === null || typeof given !== 'object' || typeof given.on !== 'function' || given.options === null || typeof given.options !== 'object') {
    invalid('moveWebSockets()', 'wss', wss, "a WebSocketServer of the ws package", 'moveWebSockets(new WebSocketServer({ server }), { serialize, adopt })');
  }
  const opts = object('moveWebSockets()', 'options', options);
  knownKeys('moveWebSockets()', opts, ['serialize', 'adopt', 'busy', 'moved', 'server']);
  for (const key of ['serialize', 'adopt'] as const) {
    if (typeof opts[key] !== 'function') invalid('moveWebSockets()', key, opts[key], 'a function', `{ ${key}: (ws${key === 'adopt' ? ', state' : ''}) => … }`);
  }
  for (const key of ['busy', 'moved'] as const) {
    if (opts[key] !== undefined && typeof opts[key] !== 'function') invalid('moveWebSockets()', key, opts[key], 'a function', `{ ${key}: (ws) => … }`);
  }
  if (opts.server !== undefined && opts.server !== null) checkServer('moveWebSockets()', opts.server, '{ server }, the http server the WebSocketServer serves');
  // ws sets `server` to null for a noServer WebSocketServer.
  const server = options.server ?? (wss.options.server as http.Server | null | undefined) ?? undefined;
  if (server === undefined) invalid('moveWebSockets()', 'server', undefined, 'the http server of a noServer WebSocketServer', '{ server }');
  const reg: Registration<S> = {
    server,
    wss,
    serialize: (ws) => options.serialize(ws),
    busy: options.busy && ((ws) => options.busy!(ws)),
    moved: options.moved && ((ws) => options.moved!(ws)),
    adopt: (ws, state) => options.adopt(ws, state as S),
    remember: (ws) => ours.set(ws, reg as Registration<unknown>),
    // It lives on in another process: a broadcast over `wss.clients` here must not reach it
    // (ws deletes a client on its 'close', which a moved WebSocket never emits).
    forget: (ws) => {
      ours.delete(ws);
      wss.clients?.delete(ws);
    },
  };
  const onConnection = (ws: WebSocket): void => void ours.set(ws, reg as Registration<unknown>);
  wss.on('connection', onConnection);
  registrations.push(reg as Registration<unknown>);
  start();
  return () => {
    wss.off('connection', onConnection);
    registrations.splice(registrations.indexOf(reg as Registration<unknown>), 1);
  };
}

/** Once per process: the mover the drain calls, the channel's `ws-conn`, and `ws-hello` to the master. */
function start(): void {
  if (sender !== undefined) return;
  const s = new WebSocketSender();
  sender = s;
  holdLingering(() => s.busy());
  setUpgradeMover({
    move: (sockets: Duplex[], listener: string, moved: (socket: Duplex) => void) => {
      const items: Array<{ ws: WsInternals; source: MoveSource }> = [];
      const rest: Duplex[] = [];
      for (const socket of sockets) {
        const ws = wsOf(socket) as WsInternals | undefined;
        const reg = ws && ours.get(ws);
        if (ws !== undefined && reg !== undefined) items.push({ ws, source: reg });
        else rest.push(socket);
      }
      return s.move(items, listener, moved).then((stay) => [...rest, ...stay]);
    },
  });
  onChannelMessage('ws-conn', (message, handle) =>
    receiveWebSocket(message, handle, (server) => registrations.find((r) => r.server === server) ?? registrations[0]),
  );
  // Any listener: the receiving side picks the registration by the server the listener names.
  if (channelEnabled()) send({ type: 'ws-hello', listeners: [] });
}
