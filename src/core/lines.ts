/**
 * The one line splitter: worker stdout/stderr, the readiness socket's sd_notify lines and
 * the control protocol all read newline-separated text from byte streams. A line longer
 * than `maxBytes` is either cut into pieces (worker output: never lose a log line) or
 * reported as an overflow (the control protocol closes such a peer).
 */

export interface LineSplitterOptions {
  maxBytes: number;
  onLine: (line: string) => void;
  /** Called once when a line exceeds maxBytes; without it the long line is cut and passed on. */
  onOverflow?: () => void;
}

/**
 * @example
 * const split = new LineSplitter({ maxBytes: 16384, onLine: (l) => lines.push(l) });
 * stream.on('data', (chunk) => split.push(chunk));
 * stream.on('end', () => split.end());
 */
export class LineSplitter {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #overflowed = false;
  readonly #opts: LineSplitterOptions;

  constructor(options: LineSplitterOptions) {
    this.#opts = options;
  }

  push(chunk: Buffer | string): void {
    if (this.#overflowed) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      const part = buf.subarray(start, nl);
      start = nl + 1;
      if (this.#pendingBytes + part.length > this.#opts.maxBytes && this.#tooLong()) return;
      this.#emit(part);
      if (this.#overflowed) return;
    }
    const rest = buf.subarray(start);
    if (rest.length === 0) return;
    this.#pending.push(rest);
    this.#pendingBytes += rest.length;
    if (this.#pendingBytes > this.#opts.maxBytes) {
      if (this.#tooLong()) return;
      this.#emit(Buffer.alloc(0));
    }
  }

  /** Flushes a last line without a trailing newline. */
  end(): void {
    if (!this.#overflowed && this.#pendingBytes > 0) this.#emit(Buffer.alloc(0));
  }

  /** True when the splitter stops here (overflow reported). */
  #tooLong(): boolean {
    if (this.#opts.onOverflow === undefined) return false;
    this.#overflowed = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#opts.onOverflow();
    return true;
  }

  #emit(last: Buffer): void {
    const line = Buffer.concat([...this.#pending, last]).toString('utf8');
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#opts.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
