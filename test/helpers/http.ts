/**
 * Raw-socket HTTP/1.1 helpers for tests where the bytes matter (keep-alive, Connection:
 * close, resets). They speak HTTP over `net` directly, like fastify's close tests, so no
 * client library hides a reset or silently retries.
 *
 * @example
 * const conn = await RawConnection.connect(port);
 * conn.send('GET', '/');
 * const res = await conn.response();
 * assert.equal(res.headers.connection, 'keep-alive');
 */
import http from 'node:http';
import net from 'node:net';

export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

/** How a connection ended: `error` is set (e.g. ECONNRESET) when it did not end cleanly. */
export interface RawClose {
  error: NodeJS.ErrnoException | undefined;
  /** True when the server sent FIN (a clean end) before the socket closed. */
  ended: boolean;
}

export class RawConnection {
  private buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  private error: NodeJS.ErrnoException | undefined;
  /** Resolves when the socket closed, with how. */
  readonly closed: Promise<RawClose>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake?.();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve({ error: this.error, ended: this.ended })));
  }

  /** Opens a TCP connection to 127.0.0.1:`port` (or a Unix socket path). */
  static connect(port: number | string, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = typeof port === 'string' ? net.connect(port) : net.connect(port, host);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Writes one request (HTTP/1.1, keep-alive unless headers say otherwise). */
  send(method: string, path: string, headers: Record<string, string> = {}, body = ''): void {
    const all: Record<string, string> = { Host: '127.0.0.1', ...headers };
    if (body !== '') all['Content-Length'] = String(Buffer.byteLength(body));
    const head = Object.entries(all)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    this.socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n${body}`);
  }

  /** Reads the next complete response; rejects if the connection ends first. */
  async response(): Promise<RawResponse> {
    for (;;) {
      const parsed = parseResponse(this.buffer);
      if (parsed !== undefined) {
        this.buffer = this.buffer.subarray(parsed.length);
        return parsed.response;
      }
      if (this.error !== undefined) throw this.error;
      if (this.ended || this.socket.destroyed) {
        throw new Error(`connection ended before a complete response (${this.buffer.length} bytes buffered)`);
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** Sends a request and reads its response. */
  async request(method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
    this.send(method, path, headers);
    return this.response();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Parses one response from the front of `data`; undefined when incomplete. */
export function parseResponse(data: Buffer): { response: RawResponse; length: number } | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const lines = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(lines[0]?.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const at = line.indexOf(':');
    const name = line.slice(0, at).trim().toLowerCase();
    const value = line.slice(at + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let offset = headEnd + 4;
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = data.indexOf('\r\n', offset);
      if (lineEnd === -1) return undefined;
      const size = parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16);
      if (data.length < lineEnd + 2 + size + 2) return undefined;
      if (size === 0) {
        offset = lineEnd + 4;
        break;
      }
      parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
      offset = lineEnd + 2 + size + 2;
    }
    return { response: { status, headers, body: Buffer.concat(parts).toString() }, length: offset };
  }
  const length = Number(headers['content-length'] ?? 0);
  if (data.length < offset + length) return undefined;
  return { response: { status, headers, body: data.subarray(offset, offset + length).toString() }, length: offset + length };
}

/** One GET on a connection of its own: the status and the generation that answered (`X-Generation`). */
export function getGeneration(url: string): Promise<{ status: number; generation: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, generation: String(res.headers['x-generation']) }));
    }).on('error', reject);
  });
}
