/**
 * Where the frames an upgraded (WebSocket) socket sends begin and end (RFC 6455 §5.2), so
 * the drain can put a close frame between two of them — never inside one — whatever
 * WebSocket library the application uses (issue 24).
 *
 * Every byte the application writes goes through `socket.write()`: the 101 response first,
 * then frames (2 bytes, an extended length of 2 or 8, a mask of 4 when masked, the payload).
 * Wrapping `write` on the socket, before the application's 'upgrade' listener runs, and
 * counting those bytes tells exactly whether the byte stream stands at a frame boundary.
 * It reads the headers only, never copies a payload. Bytes written around `write` (a
 * `socket.end(data)`, writing to the fd directly) are not seen: a socket whose writable side
 * ended is never closed this way, and the rest is a documented limit (docs/websockets.md).
 */
import type { Duplex } from 'node:stream';

/** Longest response head looked at; past it the protocol is taken for unknown. */
const MAX_HEAD = 16 * 1024;

const watches = new WeakMap<Duplex, FrameWatch>();

/** The watch of `socket`, if {@link watchFrames} installed one. */
export function framesOf(socket: Duplex): FrameWatch | undefined {
  return watches.get(socket);
}

/**
 * True for a WebSocket opening handshake (RFC 6455 §4.1): `Upgrade: websocket` with a key.
 *
 * @example
 * server.on('upgrade', (req, socket) => { if (isWebSocketRequest(req.headers)) watchFrames(socket); });
 */
export function isWebSocketRequest(headers: Record<string, string | string[] | undefined>): boolean {
  const upgrade = headers.upgrade;
  return typeof upgrade === 'string' && /(^|,)\s*websocket\s*(,|$)/i.test(upgrade) && headers['sec-websocket-key'] !== undefined;
}

/**
 * Starts counting what the application writes on `socket` (once; call it before the
 * application's 'upgrade' listener writes the 101 response).
 *
 * @example
 * const watch = watchFrames(socket);
 * watch.whenBoundary(() => watch.send(closeFrame));
 */
export function watchFrames(socket: Duplex): FrameWatch {
  let watch = watches.get(socket);
  if (watch === undefined) {
    watch = new FrameWatch(socket);
    watches.set(socket, watch);
  }
  return watch;
}

type WriteCallback = (error?: Error | null) => void;

export class FrameWatch {
  /** `head`: the response head is not complete; `frames`: after a 101; `unknown`: anything else. */
  phase: 'head' | 'frames' | 'unknown' = 'head';
  #head = '';
  /** Bytes of the current frame's header seen so far (it is at most 14 bytes long). */
  readonly #header = Buffer.alloc(14);
  #headerSeen = 0;
  /** Payload bytes of the current frame still to come. */
  #payloadLeft = 0;
  /** Set once our own close frame went out: the application's later frames are dropped. */
  #sealed = false;
  #waiters: Array<() => void> = [];
  readonly #write: Duplex['write'];

  constructor(private readonly socket: Duplex) {
    this.#write = socket.write;
    const watch = this;
    socket.write = function write(this: Duplex, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
      const done = (typeof encoding === 'function' ? encoding : cb) as WriteCallback | undefined;
      if (watch.#sealed) {
        // After a close frame an endpoint must not send data (RFC 6455 §5.5.1): what the
        // application writes now is dropped, as if written to a closed connection.
        if (done) process.nextTick(done, null);
        return true;
      }
      watch.#feed(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined);
      const result = watch.#write.call(this, chunk as Buffer, encoding as BufferEncoding, cb as WriteCallback);
      if (watch.atBoundary() && watch.#waiters.length > 0) watch.#flush();
      return result;
    } as Duplex['write'];
  }

  /** True when the bytes written so far end exactly at a frame boundary of a WebSocket. */
  atBoundary(): boolean {
    return this.phase === 'frames' && this.#headerSeen === 0 && this.#payloadLeft === 0;
  }

  /** Runs `fn` at the next frame boundary: now when the stream stands at one, else right after the write that ends the frame. */
  whenBoundary(fn: () => void): void {
    if (this.atBoundary()) fn();
    else this.#waiters.push(fn);
  }

  /** Writes `frame` (a whole frame the caller built) at a boundary, and drops every later write of the application. */
  sendLast(frame: Buffer): void {
    if (this.#sealed || this.socket.writableEnded || this.socket.destroyed) return;
    (this.#write as (chunk: Buffer) => boolean).call(this.socket, frame);
    this.#sealed = true;
  }

  #flush(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const fn of waiters) fn();
  }

  #feed(chunk: unknown, encoding: BufferEncoding | undefined): void {
    if (this.phase === 'unknown') return;
    if (typeof chunk === 'string' && this.phase === 'frames' && this.#headerSeen === 0) {
      // A payload written as a string: its length is all that counts, no copy needed.
      const length = Buffer.byteLength(chunk, encoding ?? 'utf8');
      if (length <= this.#payloadLeft) {
        this.#payloadLeft -= length;
        return;
      }
    }
    let bytes: Buffer;
    if (typeof chunk === 'string') bytes = Buffer.from(chunk, encoding ?? 'utf8');
    else if (chunk instanceof Uint8Array) bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else {
      this.phase = 'unknown'; // an object-mode chunk: not a byte stream we can follow
      return;
    }
    if (this.phase === 'head') bytes = this.#readHead(bytes);
    if (this.phase === 'frames') this.#readFrames(bytes);
  }

  /** Consumes the response head; returns the bytes after it (frames, if it was a 101). */
  #readHead(bytes: Buffer): Buffer {
    const before = this.#head.length;
    this.#head += bytes.toString('latin1');
    const end = this.#head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (this.#head.length > MAX_HEAD) this.phase = 'unknown';
      return Buffer.alloc(0);
    }
    this.phase = /^HTTP\/1\.1 101 /.test(this.#head) ? 'frames' : 'unknown';
    const rest = bytes.subarray(end + 4 - before);
    this.#head = '';
    return rest;
  }

  #readFrames(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      if (this.#payloadLeft > 0) {
        const n = Math.min(this.#payloadLeft, bytes.length - at);
        this.#payloadLeft -= n;
        at += n;
        continue;
      }
      this.#header[this.#headerSeen++] = bytes[at++] as number;
      const length = this.#headerLength();
      if (length === undefined || this.#headerSeen < length) continue;
      this.#payloadLeft = this.#payloadLength();
      this.#headerSeen = 0;
    }
  }

  /** The current header's length once its second byte is known. */
  #headerLength(): number | undefined {
    if (this.#headerSeen < 2) return undefined;
    const b1 = this.#header[1] as number;
    const len7 = b1 & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
  }

  #payloadLength(): number {
    const len7 = (this.#header[1] as number) & 0x7f;
    if (len7 === 126) return this.#header.readUInt16BE(2);
    if (len7 === 127) return Number(this.#header.readBigUInt64BE(2));
    return len7;
  }
}
