/**
 * The load loop: N connections, each with at most one request in flight (keep-alive, or
 * a new connection per request with `Connection: close`), optionally paced by a think
 * time before every request, bounded by a duration and optionally a request count.
 *
 * A request lost on the wire is recorded once, as a failure of its kind, and never
 * re-sent: autocannon re-sends such requests silently and undercounts (DESIGN.md).
 * A connection the server closes while no request is in flight is not a failure (no
 * request was lost); the next request opens a new one, and both are counted
 * (`idleClosed`, `opened`), which is how re-opened connections per reload are measured.
 */
import { connect, type Socket } from 'node:net';
import { Kind, Recorder, now, type LoadResult } from './records.js';
import { ResponseParser } from './parser.js';

export interface ClientOptions {
  /** Loopback address (default 127.0.0.1); ignored with `socketPath`. */
  host?: string;
  port?: number;
  /** A unix socket instead of host:port. */
  socketPath?: string;
  /** Request path (default '/'). */
  path?: string;
  /** Default GET. */
  method?: string;
  /** Request body (sent with its Content-Length). */
  body?: string | Uint8Array;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Concurrent connections (each carries one request at a time). */
  connections: number;
  /** Upper bound of the run; no request starts after it (default 120 000). */
  durationMs?: number;
  /** Stop after this many requests in total (sent or attempted). */
  requests?: number;
  /** false: send `Connection: close` and open a connection per request (default true). */
  keepAlive?: boolean;
  /** Think time before each request on a connection, uniform random: max, or [min, max] ms. */
  thinkMs?: number | [number, number];
  /** A request without a complete response after this long is a timeout (default 5000). */
  timeoutMs?: number;
  /** Response header recorded per request (default 'x-generation'). */
  track?: string;
}

/** After a failed connect, wait this long before the next try so a closed port does not spin. */
const REFUSED_BACKOFF_MS = 10;

function requestBytes(o: ClientOptions): Buffer {
  const body = o.body === undefined ? undefined : Buffer.from(o.body);
  const headers: Record<string, string> = {
    Host: o.socketPath ? 'localhost' : `${o.host?.includes(':') ? `[${o.host}]` : (o.host ?? '127.0.0.1')}:${o.port ?? 80}`,
    ...(o.keepAlive === false ? { Connection: 'close' } : {}),
    ...(body ? { 'Content-Length': String(body.length) } : {}),
    ...o.headers,
  };
  const head = `${o.method ?? 'GET'} ${o.path ?? '/'} HTTP/1.1\r\n` +
    Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
}

interface Slot {
  /** Its index (records say which slot sent each request). */
  index: number;
  sock: Socket | undefined;
  inflight: boolean;
  fresh: boolean;
  started: number;
  timer: NodeJS.Timeout | undefined;
  finished: boolean;
}

export interface Control {
  /** End early: no new request starts; requests in flight still complete. */
  stop(): void;
  done: Promise<LoadResult>;
}

/** Run the load loop in this thread (the public entry runs it in a worker thread). */
export function runClient(o: ClientOptions): Control {
  const rec = new Recorder();
  const request = requestBytes(o);
  const keepAlive = o.keepAlive !== false;
  const timeoutMs = o.timeoutMs ?? 5000;
  const track = (o.track ?? 'x-generation').toLowerCase();
  const bodiless = (o.method ?? 'GET').toUpperCase() === 'HEAD';
  const [thinkMin, thinkMax] = typeof o.thinkMs === 'number' ? [0, o.thinkMs] : (o.thinkMs ?? [0, 0]);
  const endAt = now() + (o.durationMs ?? 120_000);
  let stopped = false;
  let issued = 0;
  let live = 0;
  let resolve!: (r: LoadResult) => void;
  const done = new Promise<LoadResult>((r) => (resolve = r));
  const slots: Slot[] = [];

  const over = (): boolean => stopped || now() >= endAt || (o.requests !== undefined && issued >= o.requests);
  const think = (): number => (thinkMax > 0 ? thinkMin + Math.random() * (thinkMax - thinkMin) : 0);

  const finish = (slot: Slot): void => {
    if (slot.finished) return;
    slot.finished = true;
    if (slot.timer) clearTimeout(slot.timer);
    const s = slot.sock;
    slot.sock = undefined;
    s?.destroy();
    if (--live === 0) {
      clearInterval(sweep);
      clearTimeout(endTimer);
      resolve(rec.result());
    }
  };

  /** Schedule the slot's next request (after its think time, or a back-off). */
  const next = (slot: Slot, atLeastMs = 0): void => {
    if (over()) return finish(slot);
    const wait = Math.max(think(), atLeastMs);
    if (wait > 0) slot.timer = setTimeout(() => send(slot), wait);
    else send(slot);
  };

  /** A request ended (answered or lost): record it once. */
  const record = (slot: Slot, status: number, kind: number, answer?: string): void => {
    slot.inflight = false;
    rec.add(slot.started, now(), status, kind, slot.fresh, answer, slot.index);
  };

  const send = (slot: Slot): void => {
    slot.timer = undefined;
    if (over()) return finish(slot);
    issued++;
    slot.inflight = true;
    slot.started = now();
    if (slot.sock?.writable) {
      slot.fresh = false;
      slot.sock.write(request);
      return;
    }
    slot.sock?.destroy();
    slot.fresh = true;
    open(slot);
  };

  const open = (slot: Slot): void => {
    const sock = o.socketPath ? connect({ path: o.socketPath }) : connect({ host: o.host ?? '127.0.0.1', port: o.port ?? 80, noDelay: true });
    const parser = new ResponseParser(track, bodiless);
    slot.sock = sock;
    let connected = false;
    // Events of a socket the slot has already let go of (timed out, closed by us) are ignored.
    const mine = (): boolean => slot.sock === sock;
    const drop = (): void => {
      slot.sock = undefined;
      sock.destroy();
    };
    sock.once('connect', () => {
      connected = true;
      rec.opened++;
      if (mine() && slot.inflight) sock.write(request);
    });
    sock.on('data', (chunk: Buffer) => {
      if (!mine()) return;
      let res;
      try {
        res = parser.feed(chunk);
      } catch {
        rec.code('EPARSE');
        if (slot.inflight) record(slot, 0, Kind.other);
        drop();
        return next(slot);
      }
      if (!res) return;
      if (!slot.inflight) return drop(); // an unsolicited response: nothing to pair it with
      record(slot, res.status, Kind.ok, res.answer);
      if (!keepAlive || res.close) drop();
      next(slot);
    });
    // The server ended the connection while it was idle: let it go now, before the next
    // request could be written into it (a real client's pool notices this too).
    sock.once('end', () => {
      if (!mine() || slot.inflight) return;
      rec.idleClosed++;
      drop();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!mine()) return;
      rec.code(err.code ?? 'unknown');
      slot.sock = undefined;
      if (!slot.inflight) {
        rec.idleClosed++;
        return;
      }
      const kind = !connected ? Kind.refused : err.code === 'ECONNRESET' ? Kind.reset : err.code === 'EPIPE' ? Kind.epipe : Kind.other;
      record(slot, 0, kind);
      next(slot, kind === Kind.refused ? REFUSED_BACKOFF_MS : 0);
    });
    sock.once('close', () => {
      if (!mine()) return;
      slot.sock = undefined;
      if (!slot.inflight) {
        rec.idleClosed++;
        return;
      }
      const res = parser.end();
      if (res) record(slot, res.status, Kind.ok, res.answer);
      else record(slot, 0, connected ? Kind.closed : Kind.refused);
      next(slot, connected ? 0 : REFUSED_BACKOFF_MS);
    });
  };

  const sweep = setInterval(() => {
    const t = now();
    for (const slot of slots) {
      if (slot.inflight && t - slot.started > timeoutMs && slot.sock) {
        const s = slot.sock;
        slot.sock = undefined;
        s.destroy();
        record(slot, 0, Kind.timeout);
        next(slot);
      }
    }
  }, Math.min(50, timeoutMs));

  /** Wake idle slots (thinking) when the run is over, so the result does not wait for them. */
  const wakeIdle = (): void => {
    for (const slot of slots) if (!slot.inflight && !slot.finished) finish(slot);
  };
  const endTimer = setTimeout(wakeIdle, Math.max(0, endAt - now()));

  for (let i = 0; i < o.connections; i++) {
    const slot: Slot = { index: i, sock: undefined, inflight: false, fresh: false, started: 0, timer: undefined, finished: false };
    slots.push(slot);
    live++;
  }
  for (const slot of slots) next(slot);

  return {
    done,
    stop() {
      stopped = true;
      wakeIdle();
    },
  };
}
