/**
 * An HTTP/1.1 response parser for a client with one request in flight per connection:
 * Content-Length, chunked and close-delimited bodies, interim 1xx responses, bodiless
 * HEAD/204/304. It reads one chosen response header (the worker or generation that
 * answered) and whether the server will close the connection.
 */

export interface Response {
  status: number;
  /** The server closes the connection after this response (Connection: close, HTTP/1.0). */
  close: boolean;
  /** Value of the tracked header, if present. */
  answer: string | undefined;
}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const MAX_HEAD = 64 * 1024;

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailer' | 'eof';

export class ResponseParser {
  private buf: Buffer = EMPTY;
  private state: State = 'head';
  private remaining = 0;
  private current: Response = { status: 0, close: false, answer: undefined };

  /**
   * @param track lower-case name of the header to report (e.g. 'x-generation')
   * @param bodiless true for HEAD requests: responses carry no body
   */
  constructor(private readonly track: string, private readonly bodiless = false) {}

  /** True while part of a response has arrived (its end would be an early close). */
  get partial(): boolean {
    return this.state !== 'head' || this.buf.length > 0;
  }

  /** Feed bytes; returns the response once complete. Throws on a malformed response. */
  feed(chunk: Buffer): Response | undefined {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      switch (this.state) {
        case 'head': {
          const end = this.buf.indexOf(HEAD_END);
          if (end < 0) {
            if (this.buf.length > MAX_HEAD) throw new Error('response head larger than 64 KiB');
            return undefined;
          }
          const head = this.buf.toString('latin1', 0, end);
          this.buf = this.buf.subarray(end + 4);
          const done = this.onHead(head);
          if (done) return done;
          break;
        }
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.remaining, this.buf.length);
          this.remaining -= take;
          this.buf = this.buf.subarray(take);
          if (this.remaining > 0) return undefined;
          if (this.state === 'length') return this.complete();
          this.state = 'chunk-size';
          break;
        }
        case 'chunk-size': {
          const eol = this.buf.indexOf(CRLF);
          if (eol < 0) return undefined;
          const size = parseInt(this.buf.toString('latin1', 0, eol).split(';')[0] ?? '', 16);
          if (!Number.isFinite(size) || size < 0) throw new Error('bad chunk size');
          this.buf = this.buf.subarray(eol + 2);
          if (size === 0) this.state = 'trailer';
          else {
            this.remaining = size + 2; // the chunk and its CRLF
            this.state = 'chunk-data';
          }
          break;
        }
        case 'trailer': {
          const eol = this.buf.indexOf(CRLF);
          if (eol < 0) return undefined;
          this.buf = this.buf.subarray(eol + 2);
          if (eol === 0) return this.complete();
          break;
        }
        case 'eof':
          this.buf = EMPTY;
          return undefined;
      }
    }
  }

  /** The peer closed: a close-delimited body ends here; anything else was cut short. */
  end(): Response | undefined {
    return this.state === 'eof' ? this.complete() : undefined;
  }

  private onHead(head: string): Response | undefined {
    const lines = head.split('\r\n');
    const statusLine = lines[0] ?? '';
    const status = Number(statusLine.slice(9, 12));
    if (!statusLine.startsWith('HTTP/1.') || !Number.isInteger(status) || status < 100) {
      throw new Error(`malformed status line: ${JSON.stringify(statusLine.slice(0, 40))}`);
    }
    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
    if (status < 200 && status !== 101) return undefined;
    let length: number | undefined;
    let chunked = false;
    let connection = '';
    let answer: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = /(^|,)\s*chunked\s*$/i.test(value);
      else if (name === 'connection') connection = value.toLowerCase();
      if (name === this.track) answer = value;
    }
    const http10 = statusLine.startsWith('HTTP/1.0');
    const close = /(^|,)\s*close\s*(,|$)/.test(connection) || (http10 && !/keep-alive/.test(connection));
    this.current = { status, close, answer };
    if (this.bodiless || status === 204 || status === 304) return this.complete();
    if (chunked) this.state = 'chunk-size';
    else if (length !== undefined) {
      if (!Number.isInteger(length) || length < 0) throw new Error('bad content-length');
      this.remaining = length;
      this.state = 'length';
    } else {
      this.current.close = true; // the body runs until the server closes
      this.state = 'eof';
    }
    return undefined;
  }

  private complete(): Response {
    this.state = 'head';
    this.remaining = 0;
    return this.current;
  }
}
