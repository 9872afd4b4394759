/**
 * A listen entry whose address systemd's own socket holds already (socket activation): the
 * master's bind fails with EADDRINUSE, and "another process listens there" sent operators
 * looking for a foreign process when the holder was the fd systemd passed this very master.
 * It happens when systemd's socket has another name than the entry: a .socket unit without
 * FileDescriptorName= names its fd after the unit (`myapp.socket`), and an entry named
 * `http` then does not stand for it (listeners.ts binds every entry no inherited socket is
 * named like).
 *
 * Each inherited fd's local address comes from /proc: the fd's socket inode
 * (/proc/self/fd/N → `socket:[inode]`) looked up in /proc/net/tcp{,6} or /proc/net/unix.
 * getsockname(2) would need a libuv handle over the fd, and closing that handle would close
 * the master's copy of systemd's socket.
 */
import { readlinkSync } from 'node:fs';
import { HitlessError, isHitlessError } from '../errors.js';
import { LISTENER_NAME_PATTERN, listenEntryAt } from '../config/listen.js';
import type { ListenerSpec } from '../config/types.js';
import { readOr } from '../core/procfs.js';
import { canonicalIp, TCP_TABLES, tableRows } from './socket-table.js';
import { unixTableRows } from '../control/discover.js';

/** Where a socket is bound: a TCP address or a unix socket path. */
export type LocalAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** What the lookup reads: a fd's link text, a /proc/net table's text (tests give fakes). */
export interface ProcReader {
  readlink(path: string): string;
  read(path: string): string;
}

const realProc: ProcReader = {
  readlink: (path) => readlinkSync(path),
  read: readOr,
};

/**
 * The address the socket at `fd` of this process is bound to, or undefined when /proc
 * cannot tell (not a socket, not Linux, a table not readable).
 *
 * @example
 * localAddress(3); // { kind: 'tcp', host: '127.0.0.1', port: 8080 } under a .socket unit
 */
export function localAddress(fd: number, proc: ProcReader = realProc): LocalAddress | undefined {
  let link: string;
  try {
    link = proc.readlink(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
  const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  if (inode === undefined) return undefined;
  for (const table of TCP_TABLES) {
    const row = tableRows(proc.read(table)).find((r) => r.inode === inode && r.listening);
    if (row) return { kind: 'tcp', host: row.host, port: row.port };
  }
  const unix = unixTableRows(proc.read('/proc/net/unix')).find((row) => row.inode === inode);
  return unix === undefined ? undefined : { kind: 'unix', path: unix.path };
}

/**
 * Where systemd's socket at `fd` is bound, as status shows an address ("127.0.0.1:8080",
 * "[::]:80", "unix:/run/app.sock"); undefined when /proc cannot tell.
 *
 * @example
 * systemdSocketAddress(3); // '127.0.0.1:8080' under a .socket unit with ListenStream=127.0.0.1:8080
 */
export function systemdSocketAddress(fd: number, proc: ProcReader = realProc): string | undefined {
  const local = localAddress(fd, proc);
  if (local === undefined) return undefined;
  if (local.kind === 'unix') return `unix:${local.path}`;
  return local.host.includes(':') ? `[${local.host}]:${local.port}` : `${local.host}:${local.port}`;
}

/** True when binding `spec` would take the address `held` is bound to. */
export function takes(spec: ListenerSpec, held: LocalAddress): boolean {
  if (spec.kind === 'unix' || held.kind === 'unix') return spec.kind === 'unix' && held.kind === 'unix' && spec.path === held.path;
  return listenEntryAt([{ ...spec, host: canonicalIp(spec.host) }], held.host, held.port) !== undefined;
}

/** The entry's address as written, without its name ("http=127.0.0.1:8080" → "127.0.0.1:8080"). */
function addressText(spec: ListenerSpec): string {
  return spec.source.startsWith(`${spec.name}=`) ? spec.source.slice(spec.name.length + 1) : spec.source;
}

/**
 * For an ERR_BIND on an address in use: when one of systemd's sockets (`inherited`) is bound
 * to that address, the same error saying so and what to do; otherwise `err` unchanged.
 *
 * @example
 * try { bind(specs) } catch (err) { throw nameSystemdSocket(err, specs, inherited) }
 * // cannot listen on 127.0.0.1:8080: that address is already systemd's socket "myapp.socket" (fd 3) …
 */
export function nameSystemdSocket(
  err: unknown, specs: ListenerSpec[], inherited: { name: string; fd: number }[], addressOf: (fd: number) => LocalAddress | undefined = localAddress,
): unknown {
  if (inherited.length === 0 || !isHitlessError(err, 'ERR_BIND') || err.details.errno !== 'EADDRINUSE') return err;
  const spec = specs.find((s) => s.source === err.details.address);
  if (spec === undefined || (spec.kind === 'tcp' && spec.port === 0)) return err;
  const socket = inherited.find((l) => {
    const held = addressOf(l.fd);
    return held !== undefined && takes(spec, held);
  });
  if (socket === undefined) return err;
  const fixes = [
    ...(LISTENER_NAME_PATTERN.test(socket.name)
      ? [spec.source.startsWith('{')
        ? `name the listen entry "${socket.name}" ("name": "${socket.name}"; then it stands for that socket)`
        : `name the listen entry "${socket.name}=${addressText(spec)}" (then it stands for that socket)`]
      : []),
    `set FileDescriptorName=${spec.name} in the .socket unit (without it systemd names the socket after the unit)`,
    'remove the entry',
  ];
  return new HitlessError('ERR_BIND',
    `cannot listen on ${spec.source}: that address is already systemd's socket "${socket.name}" (fd ${socket.fd}), and this entry is named "${spec.name}", so it does not stand for it; ${fixes.join(', or ')}`,
    { cause: err, details: { ...err.details, systemdSocket: socket.name, fd: socket.fd } });
}
