/**
 * Serving inherited sockets with a server that already listens on another one. A net.Server
 * listens on one handle only, so each extra socket gets a relay: a bare net.Server on that
 * fd whose every accepted connection is given to the real server (`emit('connection')`,
 * which http, https and http2 servers all serve). The relay never reads: the connection is
 * the real server's from its first byte, tracked, drained and handed over with it.
 *
 * serve() without a name uses it for every socket no listen() claimed by name (issue 20: a
 * socket the master holds that no worker accepts on is a black hole, each connection to it
 * waits in the kernel's queue forever); the preload uses it for a second address on a port
 * the app listens on.
 */
import { fstatSync } from 'node:fs';
import * as net from 'node:net';
import { claimFd, claimOf, inheritedFds } from './fds.js';
import { addRelay, markArrival } from './registry.js';
import type { AnyServer } from './types.js';

/** The server serving the sockets nobody claimed: the first serve() without a name. */
let catchAll: AnyServer | undefined;

/**
 * Makes `server` the one that serves, once readiness is announced, every inherited socket
 * that no listen() claimed (internal; serve() without a name calls it). The first one wins.
 */
export function serveUnclaimedWith(server: AnyServer): void {
  catchAll ??= server;
}

/**
 * Relays every inherited socket nobody adopted to the catch-all server (internal; ready()
 * calls it right before it says `hello`). A fd that is not a socket is left alone: the
 * master then names it as unserved.
 */
export function relayUnclaimed(): void {
  const server = catchAll;
  if (server === undefined) return;
  for (const { fd, name } of inheritedFds()) {
    if (claimOf(fd) !== undefined || !isSocket(fd)) continue;
    claimFd(fd, 'relay');
    relay(server, { fd }, name);
  }
}

/**
 * Accepts on `bind` (an inherited fd, or a handle opened over it) for `server`, named `name`.
 *
 * @example
 * relay(server, { fd: 4 }, 'listen1'); // connections to fd 4 are served by `server`
 */
export function relay(server: AnyServer, bind: { fd: number } | object, name: string): net.Server {
  // The socket options node:net applies to each accepted connection are the real server's.
  const own = server as net.Server & { noDelay?: boolean; keepAlive?: boolean; keepAliveInitialDelay?: number; pauseOnConnect?: boolean };
  const relayServer = net.createServer({
    noDelay: own.noDelay === true,
    keepAlive: own.keepAlive === true,
    keepAliveInitialDelay: own.keepAliveInitialDelay ?? 0,
    pauseOnConnect: own.pauseOnConnect === true,
  }, (socket) => {
    markArrival(socket, name);
    server.emit('connection', socket);
  });
  // A listen error is the server's: an app that handles its server's 'error' sees it there.
  relayServer.on('error', (err) => server.emit('error', err));
  relayServer.listen(bind as net.ListenOptions);
  addRelay(server, relayServer, name);
  return relayServer;
}

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}
