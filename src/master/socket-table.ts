/**
 * Linux's TCP socket tables (/proc/net/tcp and /proc/net/tcp6, proc(5)) as the master needs
 * them: which sockets listen, by inode and by port. Two uses: an EADDRINUSE with no listener
 * on the port (the port is an outgoing connection's local port, issue: wrong advice), and a
 * held socket that stopped listening because a worker called shutdown(2) on it
 * (listener-watch.ts).
 *
 * A line: `sl local_address rem_address st … uid timeout inode …`; the local address is
 * `hex-ip:hex-port`, `st` 0A is TCP_LISTEN. A socket shut down while listening is unhashed:
 * it is in neither table any more.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { isIP } from 'node:net';
import { endianness } from 'node:os';
import { readOr } from '../core/procfs.js';

export const TCP_TABLES = ['/proc/net/tcp', '/proc/net/tcp6'] as const;
export const PORT_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
const LISTEN = '0A';

export interface TableRow {
  /** The local IP as Node writes it ('127.0.0.1', '::1', '::'). */
  host: string;
  port: number;
  listening: boolean;
  inode: string;
}

/**
 * The rows of a /proc/net/tcp{,6} text (its header line skipped).
 *
 * @example
 * tableRows('  sl  local_address …\n   0: 0100007F:1F90 00000000:0000 0A … 0 0 4025 1 …\n');
 * // [{ port: 8080, listening: true, inode: '4025' }]
 */
export function tableRows(text: string): TableRow[] {
  const rows: TableRow[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    if (f.length < 10 || !/^\d+:$/.test(f[0] ?? '') || local === undefined) continue;
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (Number.isNaN(port)) continue;
    rows.push({ host: hexIp(local.slice(0, local.lastIndexOf(':'))), port, listening: f[3] === LISTEN, inode: f[9] ?? '' });
  }
  return rows;
}

/**
 * The IP of a table's hex local address (8 hex digits for IPv4, 32 for IPv6): each 32-bit
 * word is in the machine's byte order (proc(5)); IPv6 comes out compressed, as Node writes it.
 *
 * @example
 * hexIp('0100007F'); // '127.0.0.1' on a little-endian machine
 * hexIp('00000000000000000000000001000000'); // '::1'
 */
export function hexIp(hex: string, littleEndian = endianness() === 'LE'): string {
  const bytes: number[] = [];
  for (let w = 0; w + 8 <= hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return canonicalIp(groups.join(':'));
}

/**
 * An IP as Node and the tables write it: IPv6 compressed ('::1', not '0:0:0:0:0:0:0:1');
 * anything else unchanged.
 */
export function canonicalIp(host: string): string {
  if (isIP(host) !== 6) return host;
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/**
 * The ephemeral port range of /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999"), or
 * undefined when the text is not such a range (not Linux).
 */
export function ephemeralRange(text: string): { low: number; high: number } | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  return m ? { low: Number(m[1]), high: Number(m[2]) } : undefined;
}

/**
 * What to say about an EADDRINUSE on `port`, from the socket tables' texts and the port
 * range file's: when something listens on the port, another process does (stop it or choose
 * another port); when nothing does, connections use the port as their local port (outgoing
 * connections get one from the ephemeral range), and a port outside that range is the fix.
 * With no tables to read (not Linux) it says the first.
 *
 * @example
 * inUseAdvice(43150, [tcpText, tcp6Text], '32768\t60999\n');
 * // 'no process listens there, but connections use it as their local port: …'
 */
export function inUseAdvice(port: number, tables: string[], rangeText: string): string {
  const rows = tables.flatMap(tableRows);
  if (rows.length === 0 || rows.some((r) => r.port === port && r.listening)) {
    return 'another process listens there: stop it or choose another port';
  }
  const range = ephemeralRange(rangeText);
  const within = range !== undefined && port >= range.low && port <= range.high;
  const where = within
    ? `${port} is in this machine's ephemeral port range ${range.low}–${range.high} (${PORT_RANGE_FILE}), from which the kernel picks the local ports of outgoing connections: choose a port outside it (below ${range.low}${range.high < 65535 ? ` or above ${range.high}` : ''})`
    : 'wait for those connections to end, or choose another port';
  return `no process listens there, but connections use it as their local port (established or TIME-WAIT, see \`ss -tan sport = :${port}\`): ${where}`;
}

/** {@link inUseAdvice} from this machine's /proc. */
export function inUseAdviceHere(port: number): string {
  return inUseAdvice(port, TCP_TABLES.map(readOr), readOr(PORT_RANGE_FILE));
}

/**
 * The inodes among `wanted` that listen, each with its port, reading the tables only as far
 * as needed: the kernel lists listening sockets before the others (tcp_seq_start walks the
 * listening hash first), so once every wanted inode was seen listening the rest is not read.
 * An inode missing from that part is looked for in the whole table before it is called not
 * listening, so the order is a shortcut, never an assumption. `read` returns a table's text
 * chunk by chunk (tests give fake tables).
 *
 * @example
 * listeningAmong(new Set(['4025354'])); // Map { '4025354' => 8080 } while it listens on 8080
 */
export function listeningAmong(wanted: Set<string>, read: (path: string) => Iterable<string> = chunks): Map<string, number> {
  const found = new Map<string, number>();
  const take = (text: string): void => {
    for (const row of tableRows(text)) if (row.listening && wanted.has(row.inode)) found.set(row.inode, row.port);
  };
  for (const path of TCP_TABLES) {
    let rest = '';
    for (const chunk of read(path)) {
      const text = rest + chunk;
      const cut = text.lastIndexOf('\n');
      rest = text.slice(cut + 1);
      take(text.slice(0, cut + 1));
      if (found.size === wanted.size) return found;
    }
    take(rest);
  }
  return found;
}

/** A file's text in 64 KiB chunks; nothing when it cannot be read. */
function* chunks(path: string): Generator<string> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return;
  }
  try {
    const buf = Buffer.alloc(65536);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) yield buf.toString('latin1', 0, n);
  } finally {
    closeSync(fd);
  }
}
