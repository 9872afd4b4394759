/**
 * Many idle keep-alive connections: open N, send one request on each, keep them idle,
 * and later send one more request on every connection still open, recording what became
 * of it. A connection the server closes while idle is noted (a pooled client would
 * re-open it; one sending at that instant would lose its request), never written to.
 * Loopback only, every wait bounded.
 */
import { connect, type Socket } from 'node:net';
import { ResponseParser } from './loadgen/parser.js';
import { now } from './loadgen/records.js';

export interface SecondRound {
  /** Requests sent (one per connection still open). */
  sent: number;
  ok: number;
  non2xx: number;
  failed: { reset: number; closed: number; timeout: number; other: number };
  /** Connections the server had closed while idle: nothing sent on them. */
  closedBefore: number;
  /** Responses per `x-generation` value. */
  byGeneration: Record<string, number>;
}

interface Conn {
  sock: Socket;
  parser: ResponseParser;
  /** Set while a request is in flight. */
  pending: ((r: { status: number; answer: string | undefined } | string) => void) | undefined;
  closed: boolean;
}

const localAddresses = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];

export class IdlePool {
  private readonly conns: Conn[] = [];
  /** Connections the server closed while no request was in flight. */
  closedWhileIdle = 0;
  /** When each of those was closed (proc.now clock). */
  readonly idleCloseTimes: number[] = [];
  /** Responses that arrived while no request was in flight (e.g. a 408 before a close), by status. */
  readonly unsolicited: Record<string, number> = {};

  private constructor(private readonly port: number) {}

  /**
   * Open `n` connections to 127.0.0.1:port, `concurrency` at a time, each answered once.
   * Source addresses rotate over 127.0.0.1–4 so 10,000+ connections (and the TIME_WAIT
   * they leave) do not crowd one address's ephemeral ports.
   */
  static async open(port: number, n: number, concurrency = 200, timeoutMs = 20_000): Promise<IdlePool> {
    const pool = new IdlePool(port);
    let next = 0;
    const one = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        const c = await pool.connect(localAddresses[i % localAddresses.length] ?? '127.0.0.1', timeoutMs);
        const r = await pool.request(c, timeoutMs);
        if (typeof r === 'string' || r.status !== 200) {
          pool.destroy();
          throw new Error(`idle pool: connection ${i}'s first request failed: ${typeof r === 'string' ? r : r.status}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, one));
    return pool;
  }

  get size(): number {
    return this.conns.length;
  }

  /** Connections still open. */
  get open(): number {
    return this.conns.filter((c) => !c.closed).length;
  }

  private connect(localAddress: string, timeoutMs: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: this.port, localAddress, noDelay: true });
      const conn: Conn = { sock, parser: new ResponseParser('x-generation'), pending: undefined, closed: false };
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`idle pool: connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        this.conns.push(conn);
        resolve(conn);
      });
      const ended = (why: string): void => {
        clearTimeout(timer);
        if (conn.closed) return;
        conn.closed = true;
        const p = conn.pending;
        conn.pending = undefined;
        if (p) {
          const res = conn.parser.end();
          p(res ? { status: res.status, answer: res.answer } : why);
        } else if (this.conns.includes(conn)) {
          this.closedWhileIdle++;
          this.idleCloseTimes.push(now());
        }
        else reject(new Error(`idle pool: connect failed: ${why}`));
        sock.destroy();
      };
      sock.on('data', (chunk: Buffer) => {
        let res;
        try {
          res = conn.parser.feed(chunk);
        } catch {
          return ended('other');
        }
        if (!res) return;
        const p = conn.pending;
        conn.pending = undefined;
        if (p) p({ status: res.status, answer: res.answer });
        else this.unsolicited[res.status] = (this.unsolicited[res.status] ?? 0) + 1;
      });
      sock.once('end', () => ended('closed'));
      sock.on('error', (err: NodeJS.ErrnoException) => ended(err.code === 'ECONNRESET' ? 'reset' : `other`));
      sock.once('close', () => ended('closed'));
    });
  }

  private request(c: Conn, timeoutMs: number): Promise<{ status: number; answer: string | undefined } | string> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        c.pending = undefined;
        c.closed = true;
        c.sock.destroy();
        resolve('timeout');
      }, timeoutMs);
      c.pending = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      c.sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n\r\n`);
    });
  }

  /** One more request on every connection still open, `concurrency` at a time. */
  async secondRound(concurrency = 1000, timeoutMs = 20_000): Promise<SecondRound> {
    const out: SecondRound = { sent: 0, ok: 0, non2xx: 0, failed: { reset: 0, closed: 0, timeout: 0, other: 0 }, closedBefore: 0, byGeneration: {} };
    const todo = this.conns.filter((c) => {
      if (c.closed) out.closedBefore++;
      return !c.closed;
    });
    let next = 0;
    const one = async (): Promise<void> => {
      while (next < todo.length) {
        const c = todo[next++]!;
        out.sent++;
        const r = await this.request(c, timeoutMs);
        if (typeof r === 'string') {
          const k = r === 'reset' || r === 'closed' || r === 'timeout' ? r : 'other';
          out.failed[k]++;
        } else {
          if (r.status >= 200 && r.status < 300) out.ok++;
          else out.non2xx++;
          const g = r.answer ?? '?';
          out.byGeneration[g] = (out.byGeneration[g] ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, one));
    return out;
  }

  destroy(): void {
    for (const c of this.conns) {
      c.closed = true;
      c.sock.destroy();
    }
  }
}
