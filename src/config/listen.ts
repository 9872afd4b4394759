/**
 * Listening addresses: `[name=]address` strings (or `{ name, address, mode }` objects in
 * hitless.json) parsed into {@link ListenerSpec}s. Names travel to workers in
 * LISTEN_FDNAMES, which is `:`-separated, so they are restricted to a safe alphabet.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { HitlessError } from '../errors.js';
import type { ListenerSpec } from './types.js';

export const LISTENER_NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;

/** Linux `sun_path` holds 108 bytes including the terminating NUL. */
const MAX_UNIX_PATH_BYTES = 107;

export const LISTEN_HINT =
  'write a port ("8080"), "127.0.0.1:8080", "[::1]:8080" or "unix:/path/app.sock?mode=0660", optionally prefixed by "name="';

/** Object form of a listener in hitless.json. */
export interface ListenObject {
  name?: string;
  address: string;
  mode?: string;
}

/** Thrown for a bad listener; the message says what is wrong and how to write it. */
export class ListenError extends Error {
  override name = 'ListenError';
}

/** The default name of the listener at `index` when none is given: `http`, then `listen1`, `listen2`… */
export function defaultListenerName(index: number): string {
  return index === 0 ? 'http' : `listen${index}`;
}

/**
 * Parses one listener. Relative unix socket paths resolve against `baseDir`.
 *
 * @throws ListenError with a message naming the problem and the accepted forms.
 * @example
 * parseListen('api=127.0.0.1:8080', 0, '/srv/app');
 * // { name: 'api', kind: 'tcp', host: '127.0.0.1', port: 8080, source: 'api=127.0.0.1:8080' }
 * parseListen('unix:run/app.sock?mode=0660', 1, '/srv/app');
 * // { name: 'listen1', kind: 'unix', path: '/srv/app/run/app.sock', mode: 0o660, … }
 */
export function parseListen(entry: string | ListenObject, index: number, baseDir: string): ListenerSpec {
  let name: string | undefined;
  let address: string;
  let modeText: string | undefined;
  const source = typeof entry === 'string' ? entry : JSON.stringify(entry);
  if (typeof entry === 'string') {
    const m = /^([^=:[\]/]+)=(.*)$/.exec(entry);
    if (m) [name, address] = [m[1], m[2] ?? ''];
    else address = entry;
  } else {
    ({ name, address, mode: modeText } = entry);
  }
  name ??= defaultListenerName(index);
  if (!LISTENER_NAME_PATTERN.test(name)) {
    throw new ListenError(`listener name ${JSON.stringify(name)} may only contain letters, digits, "_", "." and "-"`);
  }
  address = address.trim();
  if (address.startsWith('unix:')) {
    let rest = address.slice('unix:'.length);
    const q = rest.indexOf('?');
    if (q >= 0) {
      const query = new URLSearchParams(rest.slice(q + 1));
      rest = rest.slice(0, q);
      for (const key of query.keys()) {
        if (key !== 'mode') throw new ListenError(`unknown option "${key}" in ${JSON.stringify(address)}; only "?mode=0660" is supported`);
      }
      if (modeText !== undefined && query.has('mode')) throw new ListenError('mode is given twice (in the address and as "mode")');
      modeText ??= query.get('mode') ?? undefined;
    }
    if (rest === '') throw new ListenError(`${JSON.stringify(address)} has no socket path; write "unix:/path/app.sock"`);
    if (rest.startsWith('@')) throw new ListenError('abstract unix sockets ("unix:@name") are not supported; use a path');
    const path = resolve(baseDir, rest);
    if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
      throw new ListenError(`unix socket path ${path} is longer than ${MAX_UNIX_PATH_BYTES} bytes (a kernel limit); use a shorter path`);
    }
    return { name, kind: 'unix', path, mode: modeText === undefined ? undefined : parseMode(modeText), source };
  }
  if (modeText !== undefined) throw new ListenError('"mode" only applies to unix sockets ("unix:/path.sock?mode=0660")');
  return { name, ...parseTcpAddress(address), source };
}

/**
 * Parses `port`, `host:port` or `[v6]:port` (IP literals and `localhost` only: the master
 * binds before any DNS is trusted). A bare port binds all IPv4 interfaces.
 *
 * @example
 * parseTcpAddress('[::1]:9464'); // { kind: 'tcp', host: '::1', port: 9464 }
 */
export function parseTcpAddress(address: string): { kind: 'tcp'; host: string; port: number } {
  let host = '0.0.0.0';
  let portText = address;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(address);
  if (v6) {
    host = v6[1] ?? '';
    portText = v6[2] ?? '';
    if (isIP(host) !== 6) throw new ListenError(`${JSON.stringify(host)} in ${JSON.stringify(address)} is not an IPv6 address`);
  } else if (address.includes(':')) {
    const at = address.lastIndexOf(':');
    host = address.slice(0, at);
    portText = address.slice(at + 1);
    if (host.includes(':')) {
      if (isIP(host) === 6) throw new ListenError(`put IPv6 addresses in brackets: "[${host}]:${portText}"`);
      throw new ListenError(`${JSON.stringify(address)} is not a listening address; ${LISTEN_HINT}`);
    }
    if (host === '' || host === '*') host = '0.0.0.0';
    else if (host === 'localhost') host = '127.0.0.1';
    else if (isIP(host) !== 4) {
      throw new ListenError(`${JSON.stringify(host)} is not an IP address; use an IP such as "127.0.0.1" or "0.0.0.0" (hostnames are not resolved)`);
    }
  }
  if (/^\d+$/.test(portText) && Number(portText) > 65535) {
    throw new ListenError(`port ${portText} is out of range; a port is 0 to 65535`);
  }
  if (!/^\d{1,5}$/.test(portText)) {
    throw new ListenError(`${JSON.stringify(address)} is not a listening address; ${LISTEN_HINT}`);
  }
  return { kind: 'tcp', host, port: Number(portText) };
}

function parseMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new ListenError(`mode ${JSON.stringify(text)} is not an octal file mode; write it like "0660"`);
  return parseInt(text, 8);
}

/** Throws when two listeners share a name (they must be distinct in LISTEN_FDNAMES). */
export function checkUniqueNames(specs: ListenerSpec[]): void {
  const seen = new Set<string>();
  for (const spec of specs) {
    if (seen.has(spec.name)) {
      throw new ListenError(`listener name ${JSON.stringify(spec.name)} is used twice; give each listener its own name ("api=…", "admin=…")`);
    }
    seen.add(spec.name);
  }
}

/** True when binding both would fail with EADDRINUSE: the same port on the same address, or on a wildcard that covers the other. */
function overlaps(a: ListenerSpec, b: ListenerSpec): boolean {
  if (a.kind === 'unix' || b.kind === 'unix') return a.kind === 'unix' && b.kind === 'unix' && a.path === b.path;
  if (a.port === 0 || a.port !== b.port) return false;
  if (a.host === b.host) return true;
  // `::` (dual stack, unless ipv6Only) covers every address; `0.0.0.0` every IPv4 one.
  const covers = (w: typeof a, o: typeof a): boolean =>
    (w.host === '::' && (w.ipv6Only !== true || isIP(o.host) === 6)) || (w.host === '0.0.0.0' && isIP(o.host) === 4);
  return covers(a, b) || covers(b, a);
}

/**
 * The `listen` entry whose address `host:port` (another socket of this master, such as the
 * metrics endpoint's) would take too, if one does: binding it would fail with EADDRINUSE.
 */
export function listenEntryAt(specs: ListenerSpec[], host: string, port: number): ListenerSpec | undefined {
  const probe: ListenerSpec = { name: '', kind: 'tcp', host, port, source: `${host}:${port}` };
  return specs.find((spec) => overlaps(probe, spec));
}

/**
 * Which held socket a listener entry means. An entry keeps its socket across reloads as
 * long as its address is written the same way, whatever its name or position; port 0 asks
 * for "any port", so each such entry is its own socket, told apart by its name.
 */
export function listenerKey(spec: ListenerSpec): string {
  if (spec.kind === 'unix') return `unix:${spec.path}`;
  return `tcp:${spec.host}:${spec.port}${spec.ipv6Only ? ':v6only' : ''}${spec.port === 0 ? `#${spec.name}` : ''}`;
}

/**
 * Throws when two listeners would take the same address (`--listen 8080` given twice, or
 * `8080` beside `127.0.0.1:8080`): the bind would fail with EADDRINUSE on a descriptor
 * number, not naming the entries.
 */
export function checkDistinctAddresses(specs: ListenerSpec[]): void {
  specs.forEach((a, i) => {
    const other = specs.slice(0, i).find((b) => overlaps(a, b));
    if (other) {
      throw new ListenError(`${JSON.stringify(a.source)} takes the same address as ${JSON.stringify(other.source)} (one socket cannot be bound twice); remove one of them`);
    }
  });
}

/**
 * The one rule for an empty listen list, for `hitless start` (the loaded configuration), the
 * master (its sockets from systemd) and a reload (the configuration read again): a master
 * with no socket from systemd must be given an address, else its workers get no socket at
 * all and every connection is refused (a preloaded Node app even binds port 3000 on every
 * interface itself). `details.noListen` lets `hitless check` take it for a warning.
 *
 * @throws HitlessError ERR_CONFIG_INVALID
 * @example
 * requireListenAddress([], false); // throws: no listening address …
 * requireListenAddress([], true); // systemd's sockets serve: fine
 * requireListenAddress([], false, true); // a reload's message: the file is the fix
 */
export function requireListenAddress(listen: readonly ListenerSpec[], fromSystemd: boolean, reload = false): void {
  if (listen.length > 0 || fromSystemd) return;
  // `hitless reload` takes no --listen: the file is the one fix there.
  const fix = reload ? 'add "listen": ["127.0.0.1:8080"] to hitless.json' : 'add "listen": ["127.0.0.1:8080"] to hitless.json or pass --listen 127.0.0.1:8080';
  throw new HitlessError('ERR_CONFIG_INVALID',
    `no listening address: ${fix} (an empty list is allowed only under systemd socket activation, with LISTEN_FDS set)`,
    { details: { noListen: true } });
}
