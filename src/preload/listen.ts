/**
 * The preload's hook on net.Server.prototype.listen, in the worker the master started:
 * a listen on a port (or unix path) the master holds becomes adoption of the inherited
 * socket (`listen({ fd })`), for every argument shape listen() accepts and for every
 * kind of server (net, http, https, http2 all inherit this method). Anything else (port
 * 0, other ports, handles the app passes itself) goes to Node untouched. An app that
 * adopts an inherited fd by itself (systemd socket activation, as SvelteKit's adapter-node
 * does) is treated the same, so that it, too, announces readiness and stops gracefully.
 *
 * Each held socket is adopted once. A second server asking for the same port while the
 * first still listens (Fastify listens once per address of `localhost`: 127.0.0.1, then
 * ::1) gets a listen that succeeds without a socket: it emits 'listening', calls its
 * callback and never receives a connection, which the first server serves.
 */
import net from 'node:net';
import { register } from '../lib/lifecycle.js';
import { resolveShutdownOptions } from '../lib/options.js';
import { ready, status } from '../lib/ready.js';
import { instrument } from '../lib/track.js';
import { relay } from '../lib/relay.js';
import { describeHeld, findHeld, listenRequest, openHandle, probeUnknown, type HeldSocket, type ListenRequest } from './held.js';
import { hookStopSignals, makeGraceful } from './stop.js';
import type { HitlessErrorCode } from '../errors.js';

const NOT_HELD: HitlessErrorCode = 'ERR_LISTEN_PORT_NOT_HELD';

type Listen = (this: net.Server, ...args: unknown[]) => net.Server;

/** How long after a listen on a port the master does not hold the hint waits for the app to adopt. */
const NOT_HELD_HINT_MS = 2000;

const originalListen = net.Server.prototype.listen as unknown as Listen;

/**
 * Installs the hook for the sockets this process inherited.
 *
 * @example
 * hookListen(inheritedSockets(process.env, process.pid));
 */
export function hookListen(held: HeldSocket[]): void {
  hookStopSignals();
  let probed = false;
  let hinted = false;
  net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]): net.Server {
    const parsed = this.listening ? undefined : listenRequest(args);
    // The hitless library's own listen() adopts and announces by itself; it unsets the
    // LISTEN_* variables when it reads them (sd_listen_fds(1)), which tells it apart from
    // an app doing socket activation on its own (SvelteKit's adapter-node).
    if (parsed === undefined || (parsed.request.fd !== undefined && process.env.LISTEN_FDS === undefined)) {
      return originalListen.apply(this, args);
    }
    if (!probed && parsed.request.port !== undefined) {
      probed = true;
      probeUnknown(held);
    }
    const target = findHeld(held, parsed.request);
    if (target === undefined) {
      if (!hinted && parsed.request.port) {
        hinted = true;
        hintNotHeld(this, held, parsed.request);
      }
      return originalListen.apply(this, args);
    }
    const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as () => void) : undefined;
    const owner = target.server;
    if (owner !== undefined && owner !== this && owner.listening) return listenWithoutSocket(this, owner, cb);
    return adopt(this, target, held, parsed.options, cb);
  } as typeof net.Server.prototype.listen;
}

function adopt(server: net.Server, target: HeldSocket, held: HeldSocket[], options: Record<string, unknown>, cb: (() => void) | undefined): net.Server {
  target.server = server;
  // Before the first connection can arrive: the library's drain must see every connection.
  instrument(server);
  register(server, resolveShutdownOptions('preload', undefined), false, 0, target.name);
  makeGraceful(server);
  const settle = (): void => {
    server.removeListener('error', failed);
    server.removeListener('listening', listening);
  };
  const failed = (): void => {
    settle();
    target.server = undefined;
  };
  const listening = (): void => {
    settle();
    announce(held);
  };
  server.once('error', failed);
  server.once('listening', listening);
  if (target.path !== undefined) (server as unknown as { _pipeName?: string })._pipeName = target.path;
  // The master listens with backlog 511 for every generation; an app's own backlog would
  // change the shared socket's queue, so it is not passed on.
  const bind: unknown = target.handle ?? { fd: target.fd, signal: options.signal };
  return cb === undefined ? originalListen.call(server, bind) : originalListen.call(server, bind, cb);
}

/**
 * A held socket on a port the app listens on through another held socket (the master holds
 * 127.0.0.1:3000 and [::1]:3000, the app listened on 3000 once) is served by the same
 * server, through a relay (src/lib/relay.ts): the app asked for the port, and under hitless
 * the master decides where it is reachable. A socket on a port the app has not listened on
 * waits for the app: it may still listen there (a second server), and serving it with
 * another server meanwhile would answer with the wrong app.
 */
function serveSamePort(held: HeldSocket[]): void {
  for (const h of held) {
    if (h.server !== undefined || h.port === undefined) continue;
    const owner = held.find((o) => o.port === h.port && o.server?.listening === true)?.server;
    if (owner === undefined) continue;
    // A handle, not { fd }: a listen({ fd }) would come back through the hook above.
    const handle = openHandle(h);
    if (handle === undefined) continue;
    h.server = owner;
    relay(owner, handle, h.name);
  }
}

/** A listen that succeeds without a socket: `owner` already serves this port. */
function listenWithoutSocket(server: net.Server, owner: net.Server, cb: (() => void) | undefined): net.Server {
  if (cb !== undefined) server.once('listening', cb);
  Object.assign(server, {
    address: () => owner.address(),
    close(this: net.Server, done?: (err?: Error) => void) {
      if (typeof done === 'function') this.once('close', () => done());
      process.nextTick(() => this.emit('close'));
      return this;
    },
  });
  process.nextTick(() => server.emit('listening'));
  return server;
}

/**
 * READY=1 once every held socket listens in this process; until then a STATUS line says
 * which are missing (the master shows it, and names them if readyTimeout passes first).
 */
function announce(held: HeldSocket[]): void {
  serveSamePort(held);
  const missing = held.filter((h) => h.server?.listening !== true);
  try {
    if (missing.length === 0) ready();
    else status(`listening on ${held.length - missing.length} of ${held.length} sockets; waiting for the app to listen on ${describeHeld(missing)} (or remove ${missing.length === 1 ? 'that address' : 'those addresses'} from the master's "listen")`);
  } catch (err) {
    // A bad HITLESS_READY_FD (ERR_READY_FD) must not crash the app from its 'listening' event.
    process.stderr.write(`hitless: ${(err as Error).message}\n`);
  }
}

/**
 * An app that listens only on ports the master does not hold never gets ready: say so on
 * stderr (one line) if, a little later, it still has not listened on what the master holds.
 */
function hintNotHeld(server: net.Server, held: HeldSocket[], request: ListenRequest): void {
  const timer = setTimeout(() => {
    if (held.every((h) => h.server?.listening === true) || !server.listening) return;
    const where = `${request.host ?? ''}${request.host ? ':' : 'port '}${String(request.port)}`;
    const first = held.find((h) => h.port !== undefined);
    process.stderr.write(
      `hitless: ${NOT_HELD} the app listens on ${where}, which the master does not hold (it holds ${describeHeld(held)}); ` +
        `start hitless with --listen ${String(request.port)}${first ? `, or make the app listen on port ${String(first.port)}${process.env.PORT === String(first.port) ? ' (PORT is set to it)' : ''}` : ''}\n`,
    );
    // The same in one status line: `hitless status` and the master's readiness-wait lines show it.
    try {
      status(`listens on ${where}, which the master does not hold (it holds ${describeHeld(held)})`);
    } catch {
      // no readiness fd: the stderr line above is all we can say
    }
  }, NOT_HELD_HINT_MS);
  timer.unref();
}
