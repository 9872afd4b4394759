/**
 * The master's socket inventory (tableflip's fds.go): bind every configured address once,
 * hold it for the master's whole life without ever accepting on it, and hand the same
 * file descriptors to every worker.
 *
 * Why not `net.Server#listen()`: it starts accepting in the master's event loop, and
 * connections would land in a process that never answers them. Node's own `cluster`
 * holds shared handles with `net._createServerHandle()`, which binds without listening;
 * we do the same. A bound socket still needs listen(2) before a non-Node worker (systemd
 * convention: it receives *listening* sockets) can accept on it, so a one-shot child
 * listens on the inherited fds and exits before its event loop could ever poll them.
 * Once listening, a socket stays so as long as the master holds it, unless a worker calls
 * shutdown(2) on it (listener-watch.ts finds that and makes it listen again).
 *
 * Never SO_REUSEPORT: every reuseport socket has its own accept queue, and connections
 * queued on a socket that closes are reset. One socket shared by all generations has one
 * queue, so nothing queued is lost while old and new workers both listen.
 */
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { HitlessError } from '../errors.js';
import { parseListenEnv } from '../lib/fds.js';
import { listenerKey } from '../config/listen.js';
import type { ListenerSpec } from '../config/types.js';
import { inUseAdviceHere } from './socket-table.js';
import { nameSystemdSocket, systemdSocketAddress } from './systemd-socket.js';
import type { ListenerStatus } from '../core/types.js';

const BACKLOG = 511;

/** Node's internal TCP/Pipe handle as returned by net._createServerHandle. */
interface ServerHandle {
  fd: number;
  close(cb?: () => void): void;
  getsockname?(out: Record<string, unknown>): number;
}

type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType: number,
  fd?: number,
  flags?: number,
) => ServerHandle | number;

const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
/** uv's UV_TCP_IPV6ONLY flag for bind6. */
const UV_TCP_IPV6ONLY = 1;

export interface HeldListener extends ListenerStatus {
  /** Unix socket file to unlink when the socket is closed (never on a reload that keeps it). */
  unlinkPath: string | undefined;
  handle: ServerHandle | undefined;
  /** What identifies the configured address across reloads (undefined: inherited from systemd). */
  key?: string | undefined;
  /** Unix socket file mode last applied. */
  mode?: number | undefined;
}

/**
 * One held socket as an upgrade hands it to the next master (src/master/upgrade.ts): the
 * descriptor travels in the spawn's stdio array, at fd 3 + its index; this says what it is.
 */
export interface SocketDescription {
  name: string;
  address: string;
  inherited: boolean;
  key?: string | undefined;
  unlinkPath?: string | undefined;
  mode?: number | undefined;
}

export class ListenerSet {
  /** Every socket held: systemd's first, then the bound ones in the order they were bound. */
  readonly items: HeldListener[];
  private closed = false;

  constructor(items: HeldListener[]) {
    this.items = items;
  }

  get fds(): number[] {
    return this.items.map((l) => l.fd);
  }

  get names(): string[] {
    return this.items.map((l) => l.name);
  }

  status(): ListenerStatus[] {
    return this.items.map(({ name, address, fd, inherited, boundTo }) => ({ name, address, fd, inherited, ...(boundTo ? { boundTo } : {}) }));
  }

  /**
   * The fds and names a worker of a generation running `specs` gets, in the order workers
   * see them (fds 3, 4, …): systemd's sockets first, then `specs` in config order (an entry
   * named like a systemd socket is that socket). Every spec must be held already ({@link add}).
   *
   * @example
   * const { fds, names } = listeners.select(config.listen); // [3, 7], ['http', 'admin']
   */
  select(specs: ListenerSpec[]): { fds: number[]; names: string[] } {
    const inherited = this.items.filter((l) => l.inherited);
    const shadowed = new Set(inherited.map((l) => l.name));
    const picked = [...inherited.map((l) => ({ fd: l.fd, name: l.name }))];
    for (const spec of specs) {
      if (shadowed.has(spec.name)) continue;
      const held = this.items.find((l) => l.key === listenerKey(spec));
      if (!held) throw new HitlessError('ERR_BIND', `listener ${spec.name} (${spec.source}) is not bound; bind it before spawning`);
      picked.push({ fd: held.fd, name: spec.name });
    }
    return { fds: picked.map((p) => p.fd), names: picked.map((p) => p.name) };
  }

  /**
   * Binds every spec not held yet and makes it listen, all or nothing: on ERR_BIND the
   * sockets bound by this call are closed again and the set is as before. A held unix
   * socket whose `mode` changed gets the new mode. Returns the sockets it bound.
   */
  add(specs: ListenerSpec[]): HeldListener[] {
    const shadowed = new Set(this.items.filter((l) => l.inherited).map((l) => l.name));
    const fresh: HeldListener[] = [];
    try {
      for (const spec of specs) {
        if (shadowed.has(spec.name)) continue;
        const held = this.items.find((l) => l.key === listenerKey(spec)) ?? fresh.find((l) => l.key === listenerKey(spec));
        if (!held) fresh.push(bindOne(spec));
      }
      listenWithoutAccepting(fresh.map((l) => l.fd));
    } catch (err) {
      closeAll(fresh);
      throw nameSystemdSocket(err, specs, this.items.filter((l) => l.inherited));
    }
    for (const spec of specs) {
      const held = this.items.find((l) => l.key === listenerKey(spec));
      if (held && spec.kind === 'unix' && spec.mode !== undefined && spec.mode !== held.mode) {
        chmodSync(spec.path, spec.mode);
        held.mode = spec.mode;
      }
      if (held && !held.inherited) held.name = spec.name;
    }
    this.items.push(...fresh);
    return fresh;
  }

  /**
   * Closes the bound sockets none of `inUse` refers to (unix socket files unlinked) and
   * returns them. Call it only once no worker that was given them is left: a worker's own
   * copy keeps a socket open, but the master's copy is what lets later workers have it.
   */
  retain(inUse: ListenerSpec[][]): HeldListener[] {
    const keys = new Set(inUse.flat().map(listenerKey));
    const gone = this.items.filter((l) => !l.inherited && l.key !== undefined && !keys.has(l.key));
    closeAll(gone);
    for (const l of gone) this.items.splice(this.items.indexOf(l), 1);
    return gone;
  }

  /**
   * listen(2) again on held sockets that a worker shut down (listener-watch.ts): still bound
   * to their address, they listen again, without the master accepting. Throws ERR_BIND.
   */
  relisten(fds: number[]): void {
    listenWithoutAccepting(fds);
  }

  /** True once {@link close} or {@link release} ran: the descriptors are no longer this set's. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Release every socket; unix socket files the master created are removed. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeAll(this.items);
  }

  /**
   * What an upgrade hands on: every socket's descriptor, in order, and what it is (the
   * next master adopts them with {@link adoptListeners}).
   *
   * @example
   * const { fds, sockets } = listeners.inventory(); // spawn(…, { stdio: [0, 1, 2, ...fds, 'ipc'] })
   */
  inventory(): { fds: number[]; sockets: SocketDescription[] } {
    return {
      fds: this.fds,
      sockets: this.items.map(({ name, address, inherited, key, unlinkPath, mode }) => ({ name, address, inherited, key, unlinkPath, mode })),
    };
  }

  /**
   * Gives the sockets up to the master that took them over: after this, {@link close} does
   * nothing. The handles are never closed in this process: libuv unlinks a bound unix
   * socket's path when its handle closes, and that file is the new master's now. The
   * descriptors end with the process (which must then exit without Node's teardown).
   */
  release(): void {
    this.closed = true;
  }
}

/**
 * The sockets an older master handed over by an upgrade, at fds 3, 4, … in the order of
 * `sockets`: held exactly as that master held them (names, addresses, which came from
 * systemd, which unix socket files to remove at the final stop).
 *
 * @example
 * const listeners = adoptListeners(state.sockets); // fds 3 … 3 + n - 1
 */
export function adoptListeners(sockets: SocketDescription[], first = 3): ListenerSet {
  return new ListenerSet(sockets.map((s, i) => {
    const fd = first + i;
    // A handle over the inherited fd (never polled), so the set can close it: opened, not
    // bound, it has no path for libuv to unlink; the set removes unix socket files itself.
    const handle = createServerHandle(null, 0, 4, fd);
    if (typeof handle === 'number') throw bindError(`fd ${fd} (${s.address}, handed over)`, handle);
    const boundTo = s.inherited ? systemdSocketAddress(fd) : undefined;
    return { name: s.name, address: s.address, fd, inherited: s.inherited, ...(boundTo ? { boundTo } : {}), key: s.key, unlinkPath: s.unlinkPath, mode: s.mode, handle };
  }));
}

function closeAll(items: HeldListener[]): void {
  for (const l of items) {
    l.handle?.close();
    if (l.unlinkPath) {
      try {
        unlinkSync(l.unlinkPath);
      } catch {
        // already gone: nothing to clean
      }
    }
  }
}

/**
 * Sockets handed to the master by systemd (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES).
 * Returns [] unless LISTEN_PID names this process. The variables are removed from
 * `env` so they never leak into workers (each worker gets its own, correct set).
 */
export function inheritedListeners(
  env: NodeJS.ProcessEnv = process.env, pid = process.pid, boundTo: (fd: number) => string | undefined = systemdSocketAddress,
): HeldListener[] {
  // One parser for the protocol (the in-app library's). The master has always also taken
  // LISTEN_FDS without LISTEN_PID as its own; kept so.
  const fds = parseListenEnv({ ...env, LISTEN_PID: env.LISTEN_PID ?? String(pid) }, pid);
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  return fds.map(({ fd, name }, i) => ({
    name: name !== 'unknown' ? name : i === 0 ? 'http' : `listen${i}`,
    fd,
    address: `fd:${fd}`,
    inherited: true,
    // For status and messages only; `address` stays "fd:N", what the preload and an upgrade go by.
    boundTo: boundTo(fd),
    unlinkPath: undefined,
    handle: undefined,
  }));
}

/**
 * Binds what the config lists (skipping names systemd already provided), then makes
 * every socket listen(2) without accepting. Throws ERR_BIND naming the address and the fix.
 */
export function openListeners(specs: ListenerSpec[], inherited: HeldListener[] = []): ListenerSet {
  const have = new Set(inherited.map((l) => l.name));
  const bound: HeldListener[] = [];
  try {
    for (const spec of specs) if (!have.has(spec.name)) bound.push(bindOne(spec));
    const set = new ListenerSet([...inherited, ...bound]);
    listenWithoutAccepting(set.fds);
    return set;
  } catch (err) {
    new ListenerSet(bound).close();
    // An address systemd's own socket holds: say so, not "another process listens there".
    throw nameSystemdSocket(err, specs, inherited);
  }
}

function bindOne(spec: ListenerSpec): HeldListener {
  if (spec.kind === 'unix') {
    makeSocketFolder(spec.path, spec.source);
    removeStaleSocket(spec.path, spec.source);
    const handle = createServerHandle(spec.path, -1, -1);
    if (typeof handle === 'number') throw unixBindError(spec.path, spec.source, handle);
    if (spec.mode !== undefined) chmodSync(spec.path, spec.mode);
    return {
      name: spec.name, fd: handle.fd, address: `unix:${spec.path}`, inherited: false, unlinkPath: spec.path, handle,
      key: listenerKey(spec), mode: spec.mode,
    };
  }
  const v6 = spec.host.includes(':');
  const handle = createServerHandle(spec.host || null, spec.port, v6 ? 6 : 4, undefined, spec.ipv6Only ? UV_TCP_IPV6ONLY : 0);
  if (typeof handle === 'number') throw bindError(spec.source, handle, spec.port);
  // libuv defers EADDRINUSE from bind(2) to listen(2) (uv_tcp_bind's delayed_error), so a
  // port in use shows here as a socket that is not bound: getsockname fails or has no port.
  // Left alone, the later listen(2) would bind a random ephemeral port instead.
  const out: Record<string, unknown> = {};
  const err = handle.getsockname?.(out) ?? 0;
  if (err !== 0 || typeof out.port !== 'number' || (spec.port !== 0 && out.port !== spec.port)) {
    handle.close();
    throw bindError(spec.source, err !== 0 && getSystemErrorName(err) !== 'EINVAL' ? err : -98 /* EADDRINUSE */, spec.port);
  }
  const host = String(out.address ?? spec.host);
  const address = host.includes(':') ? `[${host}]:${String(out.port)}` : `${host}:${String(out.port)}`;
  return { name: spec.name, fd: handle.fd, address, inherited: false, unlinkPath: undefined, handle, key: listenerKey(spec) };
}

/** `port`: the TCP port asked for, so an EADDRINUSE can tell a listener from connections (socket-table.ts). */
function bindError(source: string, errno: number, port?: number): HitlessError {
  const name = getSystemErrorName(errno);
  const fix: Record<string, string> = {
    EADDRINUSE: port ? inUseAdviceHere(port) : 'another process listens there: stop it or choose another port',
    EACCES: 'ports below 1024 need root (or CAP_NET_BIND_SERVICE); unix sockets need a writable folder',
    EADDRNOTAVAIL: 'this machine has no such address: use 127.0.0.1, 0.0.0.0, ::1 or ::',
    ENOENT: 'the folder of the unix socket does not exist',
  };
  return new HitlessError('ERR_BIND', `cannot listen on ${source}: ${name}${fix[name] ? ` (${fix[name]})` : ''}`, {
    details: { address: source, errno: name },
  });
}

/**
 * The folder of a unix socket is created when missing (like the run dir: `run/admin.sock` in
 * a fresh app folder just works). libuv reports a missing folder as EACCES, so a bind that
 * fails without this would blame the permissions.
 */
function makeSocketFolder(path: string, source: string): void {
  const folder = dirname(path);
  try {
    mkdirSync(folder, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'EEXIST' || code === 'ENOTDIR'
      ? `${folder} is not a folder: a file is in the way (remove it, or choose another socket path)`
      : `cannot create the folder ${folder}: ${code} (create it with write access for this user, or choose a socket path in a writable folder)`;
    throw new HitlessError('ERR_BIND', `cannot listen on ${source}: ${why}`, {
      details: { address: source, errno: code },
    });
  }
}

/** A failed unix bind: EACCES names the folder the user cannot write, not ports. */
function unixBindError(path: string, source: string, errno: number): HitlessError {
  if (getSystemErrorName(errno) !== 'EACCES') return bindError(source, errno);
  const folder = dirname(path);
  try {
    accessSync(folder, constants.W_OK | constants.X_OK);
  } catch {
    return new HitlessError('ERR_BIND', `cannot listen on ${source}: EACCES (this user cannot create files in ${folder}: give it write access, or choose a socket path in a writable folder)`, {
      details: { address: source, errno: 'EACCES' },
    });
  }
  return bindError(source, errno);
}

/** A socket file left by a master that died is removed; a live one is an error. */
function removeStaleSocket(path: string, source: string): void {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // does not exist
  }
  if (!isSocket) {
    throw new HitlessError('ERR_BIND', `cannot listen on ${source}: ${path} exists and is not a socket (remove it or choose another path)`);
  }
  const probe = spawnSync(process.execPath, ['-e', PROBE_UNIX, path], { stdio: 'ignore', timeout: 5000 });
  if (probe.status === 0) {
    throw new HitlessError('ERR_BIND', `cannot listen on ${source}: another process listens on ${path} (stop it or choose another path)`, {
      details: { address: source, errno: 'EADDRINUSE' },
    });
  }
  unlinkSync(path);
}

/** Exits 0 when something accepts on the unix socket given as argv[1], 1 otherwise. */
const PROBE_UNIX = `const s=require('net').connect(process.argv[1]);s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));`;

/**
 * listen(2) on each fd from a throwaway child: `server.listen({ fd })` calls listen(2)
 * synchronously and 'listening' fires from the nextTick queue, before the child's event
 * loop first polls, so the child exits without ever accepting a connection.
 */
function listenWithoutAccepting(fds: number[]): void {
  if (fds.length === 0) return;
  const code = `const net=require('net');let n=${fds.length};
for(let i=0;i<${fds.length};i++){const s=net.createServer();
s.on('error',(e)=>{process.stderr.write('fd '+(3+i)+': '+e.message);process.exit(1)});
s.on('listening',()=>{if(--n===0)process.exit(0)});s.listen({fd:3+i,backlog:${BACKLOG}});}`;
  const result = spawnSync(process.execPath, ['-e', code], {
    stdio: ['ignore', 'ignore', 'pipe', ...fds],
    timeout: 10_000,
  });
  if (result.status !== 0) {
    const why = result.stderr?.toString().trim() || result.error?.message || `exit ${String(result.status)}`;
    throw new HitlessError('ERR_BIND', `cannot make the listening sockets listen: ${why}`);
  }
}
