/**
 * A TCP port free on `host` (127.0.0.1) right now. Apps that bind a port of their own choosing
 * (the point of the preload tests) need it before the master starts, so port 0 cannot be
 * used, and the port stays unbound in the gap until the master binds it.
 *
 * The port is drawn at random from below the kernel's ephemeral range
 * (/proc/sys/net/ipv4/ip_local_port_range): every port-0 listener and every outgoing
 * connection on the machine takes its port from that range, so on a busy machine (load
 * tests opening thousands of client connections, a second suite beside this one) a port
 * handed out from inside it can be taken in the gap (seen: EADDRINUSE when the master binds).
 * Below the range only another explicit bind can collide, and this process never hands the
 * same port out twice. Where there is no room below the range, the kernel's port 0 is used.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';

/** Lowest port drawn from; the draw is [FLOOR, start of the ephemeral range). */
const FLOOR = 10_000;
const given = new Set<number>();

function ephemeralStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) ? start : 0;
  } catch {
    return 0; // not Linux: no room known, port 0 it is
  }
}
const START = ephemeralStart();

/** Binds `port` on `host` and closes it again: the port it got (the kernel's for 0), or undefined when taken. */
function probe(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err)));
    server.listen({ port, host, exclusive: true }, () => {
      const { port: got } = server.address() as net.AddressInfo;
      server.close(() => resolve(got));
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const room = START - FLOOR;
  for (let tries = 0; room >= 1000 && tries < 50; tries++) {
    const port = FLOOR + Math.floor(Math.random() * room);
    if (given.has(port)) continue;
    given.add(port);
    if ((await probe(port, host)) !== undefined) return port;
  }
  const port = await probe(0, host);
  if (port === undefined) throw new Error(`freePort: no port free on ${host}`);
  return port;
}
