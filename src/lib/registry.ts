/**
 * The servers this process drains when it stops, with their shutdown options and the name
 * of the inherited socket each one listens on (LISTEN_FDNAMES). Names tell the master which
 * listener a handed-over connection belongs to, and tell a receiving worker which server
 * must serve it.
 */
import type * as http from 'node:http';
import type * as net from 'node:net';
import { inheritedFds } from './fds.js';
import { nodeHttp } from './node-http.js';
import type { ResolvedShutdownOptions } from './options.js';
import type { AnyServer } from './types.js';

interface Registration {
  options: ResolvedShutdownOptions;
  /** The inherited socket's name, when known. */
  name: string | undefined;
}

const servers = new Map<AnyServer, Registration>();
/** Relays serve() opened for inherited sockets nobody claimed, by the server they feed (relay.ts). */
const relays = new Map<AnyServer, Array<{ relay: net.Server; name: string }>>();
/** The inherited socket a relayed connection arrived on (its server listens on another one). */
const arrivedOn = new WeakMap<object, string>();
let stopHandled = false;

/** Records that the library's lifecycle handles the stop (signals installed; internal). */
export function markStopHandled(): void {
  stopHandled = true;
}

/**
 * True when the library stops this process on the master's request: only then may a worker
 * say hello (the master then sends `stop` instead of the stop signal, which an application
 * that handles signals itself, `signals: false`, would never see).
 */
export function stopIsHandled(): boolean {
  return stopHandled;
}

/**
 * Records `server` (again: the options of the last call win; a known name is kept). Returns
 * the undo: it restores the registration as it was before (a failed listen() of a server
 * already listening from an earlier call keeps that first one), or forgets a new server.
 */
export function addServer(server: AnyServer, options: ResolvedShutdownOptions, name?: string): () => void {
  const known = servers.get(server);
  servers.set(server, { options, name: name ?? known?.name });
  return () => {
    if (known === undefined) servers.delete(server);
    else servers.set(server, known);
  };
}

/** True when `server` is registered. */
export function hasServer(server: AnyServer): boolean {
  return servers.has(server);
}

/** Every registered server with its shutdown options, in registration order. */
export function registeredServers(): Array<[AnyServer, ResolvedShutdownOptions]> {
  return [...servers].map(([server, reg]) => [server, reg.options]);
}

/**
 * True for a plain node:http server: its connections can move to another process. https
 * and http2 keep TLS and session state in this process (neither is an http.Server).
 */
export function isPlainHttp(server: AnyServer): server is http.Server {
  return server instanceof nodeHttp.Server;
}

/**
 * The listener name of `server`: given to listen(), or, for a server the application
 * listened itself (track()), found by matching its listening fd with the inherited ones.
 */
export function listenerName(server: AnyServer): string | undefined {
  const reg = servers.get(server);
  if (reg === undefined) return undefined;
  if (reg.name === undefined) {
    const fd = (server as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
    if (typeof fd === 'number' && fd >= 0) reg.name = inheritedFds().find((f) => f.fd === fd)?.name;
  }
  return reg.name;
}

/** Records that `relay` accepts on the inherited socket `name` for `server` (relay.ts). */
export function addRelay(server: AnyServer, relay: net.Server, name: string): void {
  relays.set(server, [...(relays.get(server) ?? []), { relay, name }]);
}

/** Records that `socket` was accepted on the inherited socket `name` by a relay (relay.ts). */
export function markArrival(socket: net.Socket, name: string): void {
  arrivedOn.set(socket, name);
}

/**
 * The inherited socket a relay accepted `socket` on, if one did. A handed-over connection
 * goes to the master under that name, not its server's: a connection to an address a
 * reload removes then goes to no worker of a generation that does not serve it.
 */
export function arrivalOf(socket: object): string | undefined {
  return arrivedOn.get(socket);
}

/** The relays feeding `server`: they stop accepting when it does. */
export function relaysOf(server: AnyServer): net.Server[] {
  return (relays.get(server) ?? []).map((r) => r.relay);
}

/**
 * Names of every inherited socket this process accepts on: the registered servers' (of any
 * kind) and the relays'. `hello` carries them, so the master can refuse a generation that
 * leaves a socket unserved (a connection to it would wait in the kernel's queue forever).
 */
export function adoptedListeners(): string[] {
  const names = new Set<string>();
  for (const server of servers.keys()) {
    const name = listenerName(server);
    if (name !== undefined) names.add(name);
  }
  for (const list of relays.values()) for (const { name } of list) names.add(name);
  return [...names];
}

/** Names of the sockets whose handed-over connections a registered plain HTTP server takes: its own and its relays'. */
export function handoverListeners(): string[] {
  const names: string[] = [];
  for (const server of servers.keys()) {
    if (!isPlainHttp(server)) continue;
    for (const name of [listenerName(server), ...(relays.get(server) ?? []).map((r) => r.name)]) {
      if (name !== undefined && !names.includes(name)) names.push(name);
    }
  }
  return names;
}

/**
 * The plain HTTP server that serves a connection handed over for listener `name`: the one
 * listening under that name, else the one relaying that socket, else the first registered
 * plain HTTP server (a connection is never dropped because names disagree), else undefined.
 */
export function serverFor(name: unknown): http.Server | undefined {
  let first: http.Server | undefined;
  let relaying: http.Server | undefined;
  for (const server of servers.keys()) {
    if (!isPlainHttp(server)) continue;
    if (listenerName(server) === name) return server;
    if (relays.get(server)?.some((r) => r.name === name)) relaying ??= server;
    first ??= server;
  }
  return relaying ?? first;
}
