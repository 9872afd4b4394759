/**
 * The sockets the master holds, as the preload sees them: which fd, and which port or
 * unix path each one is, so that an app's own `listen(3000)` can be matched to the
 * inherited socket for port 3000.
 *
 * The master says where each fd listens in HITLESS_LISTEN_ADDRS (a JSON array in fd
 * order, like ["127.0.0.1:3000", "unix:/run/app.sock"]). An fd it cannot describe (a
 * socket systemd passed to the master shows as "fd:3"), or a worker started without the
 * variable, is asked itself with getsockname(2) on a server handle opened over the fd; that
 * handle is kept and later adopted as is, because closing it would close the fd.
 */
import net from 'node:net';
import { resolve } from 'node:path';
import { parseListenEnv } from '../lib/fds.js';

/** One socket the master holds. */
export interface HeldSocket {
  fd: number;
  name: string;
  /** TCP port; undefined for unix sockets and sockets whose address is unknown. */
  port?: number | undefined;
  /** The bound host ("127.0.0.1", "::", "0.0.0.0"). */
  host?: string | undefined;
  /** Unix socket path. */
  path?: string | undefined;
  /** The address as the master shows it, for messages. */
  address: string;
  /** The server that adopted this socket in this process. */
  server?: net.Server | undefined;
  /** A handle opened over the fd to read its address; adopted instead of the bare fd. */
  handle?: object | undefined;
}

/** What an app's listen() asked for, after net._normalizeArgs. */
export interface ListenRequest {
  /** An fd the app adopts itself (systemd socket activation, as SvelteKit's adapter-node does). */
  fd?: number | undefined;
  port?: number | undefined;
  host?: string | undefined;
  path?: string | undefined;
}

export const ADDRS_VAR = 'HITLESS_LISTEN_ADDRS';

type CreateServerHandle = (address: null, port: null, addressType: null, fd: number) => object | number;
type NormalizeArgs = (args: unknown[]) => [Record<string, unknown>, ((...a: unknown[]) => void) | null];

const normalizeArgs = (net as unknown as { _normalizeArgs: NormalizeArgs })._normalizeArgs;

/**
 * What a listen() call asks for, or undefined when it passes a handle object or asks for
 * no particular port (port 0 or none: a random port).
 *
 * @example
 * listenRequest([3000, 'localhost', () => {}])?.request; // { port: 3000, host: 'localhost', path: undefined }
 */
export function listenRequest(args: unknown[]): { request: ListenRequest; options: Record<string, unknown> } | undefined {
  const [options] = normalizeArgs(args);
  // A server, a { handle }, or a TCP/Pipe handle itself (whose fd is a getter).
  if ('_handle' in options || 'handle' in options || typeof options.getAsyncId === 'function') return undefined;
  if (typeof options.fd === 'number') return { request: { fd: options.fd }, options };
  const raw = options.port;
  const port = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
  const host = typeof options.host === 'string' ? options.host : undefined;
  const path = typeof options.path === 'string' && options.port === undefined ? options.path : undefined;
  if (!port && path === undefined) return undefined;
  return { request: { port, host, path }, options };
}

/**
 * Parses "host:port", "[v6]:port" or "unix:/path"; anything else (like "fd:3") is unknown.
 *
 * @example
 * parseAddress('[::1]:3000'); // { host: '::1', port: 3000 }
 */
export function parseAddress(text: string): Pick<HeldSocket, 'port' | 'host' | 'path'> {
  if (text.startsWith('unix:')) return { path: text.slice('unix:'.length) };
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (m === null || text.startsWith('fd:')) return {};
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** The addresses listed in HITLESS_LISTEN_ADDRS (empty when absent or malformed). */
export function listedAddresses(env: NodeJS.ProcessEnv): string[] {
  const raw = env[ADDRS_VAR];
  if (raw === undefined || raw === '') return [];
  try {
    const list: unknown = JSON.parse(raw);
    return Array.isArray(list) ? list.map((a) => String(a)) : [];
  } catch {
    return [];
  }
}

/**
 * The sockets this process inherited (LISTEN_PID is its pid), with their addresses.
 * Reads the environment without unsetting it: a wrapper such as `npm start` has this pid,
 * and the app it starts must still see the variables to explain why it cannot listen.
 */
export function inheritedSockets(env: NodeJS.ProcessEnv, pid: number): HeldSocket[] {
  const listed = listedAddresses(env);
  return parseListenEnv(env, pid).map(({ fd, name }, i) => {
    const address = listed[i] ?? `fd:${fd}`;
    return { fd, name, address, ...parseAddress(address) };
  });
}

/**
 * The addresses held for another process (a wrapper's child only needs to recognise
 * them; it has no fds to adopt).
 */
export function foreignSockets(env: NodeJS.ProcessEnv): HeldSocket[] {
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  return listedAddresses(env).map((address, i) => ({ fd: -1, name: names[i] || 'unknown', address, ...parseAddress(address) }));
}

/**
 * A server handle over `h`'s fd (kept in `h.handle`: closing it would close the fd), or
 * undefined when the fd is not a socket. Listening on a handle never passes through the
 * preload's listen hook, which a `{ fd }` would.
 */
export function openHandle(h: HeldSocket): object | undefined {
  if (h.handle === undefined) {
    const handle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle(null, null, null, h.fd);
    if (typeof handle === 'number') return undefined;
    h.handle = handle;
  }
  return h.handle;
}

/** Reads the address of each socket the master could not describe, from the fd itself. */
export function probeUnknown(held: HeldSocket[]): void {
  for (const h of held) {
    if (h.port !== undefined || h.path !== undefined || h.handle !== undefined) continue;
    const handle = openHandle(h);
    if (handle === undefined) continue; // not a socket: listen({ fd }) will say so
    const out: { address?: string; port?: number } = {};
    const getsockname = (handle as { getsockname?: (o: object) => number }).getsockname;
    if (getsockname === undefined || getsockname.call(handle, out) !== 0 || out.port === undefined) continue;
    h.port = out.port;
    h.host = out.address;
    h.address = out.address?.includes(':') ? `[${out.address}]:${out.port}` : `${out.address}:${out.port}`;
  }
}

/**
 * The held socket a listen() request means, or undefined when the request is for a port
 * (or path) the master does not hold. Any host matches: under hitless the master's
 * `--listen` decides where the port is reachable. When the master holds the port on
 * several addresses, the exact host wins, then a socket not yet adopted.
 *
 * @example
 * findHeld(held, { port: 3000, host: '::' }); // the socket held for 127.0.0.1:3000
 */
export function findHeld(held: readonly HeldSocket[], request: ListenRequest): HeldSocket | undefined {
  if (request.fd !== undefined) return held.find((h) => h.fd === request.fd);
  if (request.path !== undefined) {
    const path = resolve(request.path);
    return held.find((h) => h.path !== undefined && resolve(h.path) === path);
  }
  if (request.port === undefined || request.port === 0) return undefined;
  const same = held.filter((h) => h.port === request.port);
  return (
    same.find((h) => request.host !== undefined && h.host === request.host) ??
    same.find((h) => h.server === undefined) ??
    same[0]
  );
}

/** "http (127.0.0.1:3000), admin (unix:/run/admin.sock)", for messages. */
export function describeHeld(held: readonly HeldSocket[]): string {
  return held.map((h) => `${h.name} (${h.address})`).join(', ');
}
