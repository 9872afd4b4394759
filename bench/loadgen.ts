/**
 * A small HTTP/1.1 load client on raw node:net, for what wrk cannot give: one record per
 * request (start time, latency, status, error kind), so latency and errors can be cut
 * into reload windows and drawn over time.
 *
 * Each of N connections sends one request at a time (keep-alive, or a new connection
 * per request with `Connection: close`). A request lost on the wire is recorded as a
 * failure of its kind and is never re-sent: autocannon re-sends such requests silently
 * and undercounts (see DESIGN.md), which is exactly what this client must not do.
 *
 * It runs in a worker thread so the harness's own polling never delays it.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { connect, type Socket } from 'node:net';
import { now } from './proc.js';

export interface LoadOptions {
  port: number;
  connections: number;
  durationMs: number;
  /** Request path (default '/'). */
  path?: string;
  /** false: send `Connection: close` and open a connection per request. */
  keepAlive: boolean;
  /** A request without a complete response after this long is a timeout (default 5000). */
  timeoutMs?: number;
}

/** Error kinds, stored as a byte per request. */
export const Kind = { ok: 0, reset: 1, refused: 2, timeout: 3, epipe: 4, closed: 5, other: 6 } as const;
export type KindName = keyof typeof Kind;
export const kindNames = Object.keys(Kind) as KindName[];

export interface LoadResult {
  count: number;
  /** Absolute ms (see proc.now) at which each request was written (or its connect began). */
  start: Float64Array;
  latency: Float32Array;
  status: Uint16Array;
  kind: Uint8Array;
}

class Recorder {
  count = 0;
  start = new Float64Array(1 << 16);
  latency = new Float32Array(1 << 16);
  status = new Uint16Array(1 << 16);
  kind = new Uint8Array(1 << 16);

  add(start: number, end: number, status: number, kind: number): void {
    if (this.count === this.start.length) this.grow();
    const i = this.count++;
    this.start[i] = start;
    this.latency[i] = end - start;
    this.status[i] = status;
    this.kind[i] = kind;
  }

  private grow(): void {
    const n = this.start.length * 2;
    const s = new Float64Array(n); s.set(this.start); this.start = s;
    const l = new Float32Array(n); l.set(this.latency); this.latency = l;
    const st = new Uint16Array(n); st.set(this.status); this.status = st;
    const k = new Uint8Array(n); k.set(this.kind); this.kind = k;
  }

  result(): LoadResult {
    const n = this.count;
    return { count: n, start: this.start.slice(0, n), latency: this.latency.slice(0, n), status: this.status.slice(0, n), kind: this.kind.slice(0, n) };
  }
}

function kindOf(err: NodeJS.ErrnoException): number {
  switch (err.code) {
    case 'ECONNRESET': return Kind.reset;
    case 'ECONNREFUSED': return Kind.refused;
    case 'EPIPE': return Kind.epipe;
    default: return Kind.other;
  }
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Parses one response at a time from a byte stream; returns status when complete. */
class ResponseParser {
  private buf: Buffer = Buffer.alloc(0);
  private need = -1;
  private statusCode = 0;
  closeAfter = false;

  /** Feed bytes; returns the status code when a full response arrived, else 0. */
  feed(chunk: Buffer): number {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.need < 0) {
      const end = this.buf.indexOf(HEADER_END);
      if (end < 0) return 0;
      const head = this.buf.subarray(0, end).toString('latin1');
      this.statusCode = Number(head.slice(9, 12));
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      this.closeAfter = /\r\nconnection:\s*close/i.test(head);
      this.need = end + 4 + (cl?.[1] ? Number(cl[1]) : 0);
    }
    if (this.buf.length < this.need) return 0;
    this.buf = this.buf.subarray(this.need);
    this.need = -1;
    return this.statusCode;
  }
}

/** The load loop itself (runs inside the worker thread). */
function drive(opts: LoadOptions, stopSignal: { stop: boolean }): Promise<LoadResult> {
  const rec = new Recorder();
  const timeoutMs = opts.timeoutMs ?? 5000;
  const request = Buffer.from(
    `GET ${opts.path ?? '/'} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\n${opts.keepAlive ? '' : 'Connection: close\r\n'}\r\n`,
  );
  const endAt = now() + opts.durationMs;
  let live = 0;
  return new Promise((resolve) => {
    const slots: Array<{ sock: Socket | undefined; started: number; inflight: boolean }> = [];
    const sweep = setInterval(() => {
      const t = now();
      for (const s of slots) {
        if (s.inflight && t - s.started > timeoutMs && s.sock) {
          s.inflight = false;
          rec.add(s.started, t, 0, Kind.timeout);
          s.sock.destroy();
        }
      }
    }, 50);
    const finishSlot = (): void => {
      if (--live === 0) {
        clearInterval(sweep);
        resolve(rec.result());
      }
    };
    const open = (slot: (typeof slots)[number]): void => {
      if (stopSignal.stop || now() >= endAt) return finishSlot();
      const parser = new ResponseParser();
      const sock = connect({ host: '127.0.0.1', port: opts.port, noDelay: true });
      slot.sock = sock;
      slot.started = now();
      slot.inflight = true;
      let connected = false;
      let reopenDelay = 0;
      const send = (): void => {
        slot.started = now();
        slot.inflight = true;
        sock.write(request);
      };
      sock.once('connect', () => {
        connected = true;
        send();
      });
      sock.on('data', (chunk: Buffer) => {
        const status = parser.feed(chunk);
        if (!status || !slot.inflight) return;
        slot.inflight = false;
        rec.add(slot.started, now(), status, Kind.ok);
        if (!opts.keepAlive || parser.closeAfter || stopSignal.stop || now() >= endAt) sock.destroy();
        else send();
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        if (slot.inflight) {
          slot.inflight = false;
          const kind = kindOf(err);
          rec.add(slot.started, now(), 0, kind);
          // Back off briefly on refused so a closed port does not spin the loop.
          if (kind === Kind.refused || !connected) reopenDelay = 10;
        }
      });
      sock.once('close', () => {
        if (slot.inflight) {
          // Peer closed (FIN) with the request unanswered: the "early close" kind.
          slot.inflight = false;
          rec.add(slot.started, now(), 0, Kind.closed);
        }
        if (reopenDelay) setTimeout(() => open(slot), reopenDelay);
        else setImmediate(() => open(slot));
      });
    };
    for (let i = 0; i < opts.connections; i++) {
      const slot = { sock: undefined, started: 0, inflight: false };
      slots.push(slot);
      live++;
      open(slot);
    }
  });
}

export interface LoadRun {
  /** Resolves when the duration is over and every connection has finished. */
  done: Promise<LoadResult>;
  /** End early (in-flight requests still complete). */
  stop(): void;
}

/**
 * Start a load run in a worker thread.
 *
 * @example
 * const run = startLoad({ port, connections: 10, durationMs: 5000, keepAlive: true });
 * const result = await run.done;
 */
export function startLoad(opts: LoadOptions): LoadRun {
  const worker = new Worker(new URL(import.meta.url), { workerData: opts });
  const done = new Promise<LoadResult>((resolve, reject) => {
    worker.once('message', (r: LoadResult) => resolve(r));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load worker exited with code ${code}`));
    });
  });
  return { done, stop: () => worker.postMessage('stop') };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const stopSignal = { stop: false };
  port.on('message', (m) => {
    if (m === 'stop') stopSignal.stop = true;
  });
  const result = await drive(workerData as LoadOptions, stopSignal);
  port.postMessage(result, [result.start.buffer, result.latency.buffer, result.status.buffer, result.kind.buffer] as ArrayBuffer[]);
  port.close();
}
