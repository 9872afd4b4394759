/**
 * The rotating stream behind `<logs.dir>/workers.log`, kept writing to the file its path
 * names. A stream writes to the file it opened: once someone deletes the folder or the
 * file (`rm -rf logs`) or moves it away, every line goes to a file no one can open, until
 * the next size rotation opens the path again — at the default 10M, days of lost output,
 * and `hitless logs` finds nothing. So, as `tail -F` does from the reading side, the
 * stream checks that the path still names the file it has open and, when it does not,
 * creates the folder and the file again and writes there.
 *
 * When it checks: before a line is written, at most once per `checkMs` (one stat(2) a
 * second under any output rate; none while the workers are silent). Before a write rather
 * than on a timer, so the first line after a quiet spell already lands in the new file;
 * what is lost is at most the lines of the `checkMs` before the removal was seen, which
 * went to the removed file. Not on each write: a stat per line would cost a system call
 * per line on a busy master. Between a rotation and the reopening of the path that follows
 * it, the path is missing by design, so no check runs then.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { prepareFolder } from '../config/output-file.js';
import type { Logger } from '../core/logger.js';

/** How often, at most, the path of the log file is checked against the open file. */
export const LOG_FILE_CHECK_MS = 1000;

/** rotating-file-stream's `createStream`, imported lazily by the caller. */
export type CreateStream = (name: string, options: { path: string; size: string; rotate: number }) => Writable;

/** What the stream writes and how it rotates. */
export interface LogStreamOptions {
  /** Folder of the files (logs.dir). */
  dir: string;
  /** Name of the live file in it (workers.log). */
  name: string;
  /** Rotate at this many bytes (logs.maxSize). */
  maxSize: number;
  /** Rotated files kept (logs.keep). */
  keep: number;
  /** Check the path at most this often, ms. Default {@link LOG_FILE_CHECK_MS}; 0 checks before every line. */
  checkMs?: number;
}

/**
 * A rotating log stream that re-creates its folder and file when they are removed or
 * replaced, logging one warning each time. `failed` is set once a stream error or a
 * folder that cannot be made again stops it; later lines are refused (`write` returns false).
 *
 * @example
 * ```ts
 * const { createStream } = await import('rotating-file-stream');
 * const out = new LogStream(createStream, { dir: 'logs', name: 'workers.log', maxSize: 10e6, keep: 5 }, logger);
 * out.write('[1.1] up\n');
 * await out.end();
 * ```
 */
export class LogStream {
  /** The error that stopped the stream, if one did. */
  failed: Error | undefined;
  readonly #create: CreateStream;
  readonly #opts: LogStreamOptions;
  readonly #logger: Logger;
  readonly #path: string;
  #stream!: Writable;
  /** The file the stream has open, as found at its path when it opened; unset while it (re)opens. */
  #known: { dev: number; ino: number } | undefined;
  #lastCheck = -Infinity;

  constructor(create: CreateStream, opts: LogStreamOptions, logger: Logger) {
    this.#create = create;
    this.#opts = opts;
    this.#logger = logger;
    this.#path = join(opts.dir, opts.name);
    this.#open();
  }

  /** Writes one whole line; false when the stream has stopped (the line is dropped). */
  write(text: string): boolean {
    if (this.failed || this.#stream.writableEnded) return false;
    this.#check();
    if (this.failed) return false;
    // No backpressure wait on purpose: the master must never stall on a slow disk;
    // the stream buffers in memory meanwhile, so nothing is lost.
    this.#stream.write(text);
    return true;
  }

  /** Resolves once every line written is on disk (or the stream failed). */
  end(): Promise<void> {
    const stream = this.#stream;
    return new Promise<void>((resolve) => {
      if (this.failed || stream.destroyed) return resolve();
      stream.once('error', () => resolve());
      stream.end(() => resolve());
    });
  }

  #open(): void {
    const { dir, name, maxSize, keep } = this.#opts;
    const stream = this.#create(name, {
      path: dir,
      size: `${Math.max(1, Math.floor(maxSize))}B`,
      // Classical rotation: workers.log → workers.log.1 → … → workers.log.<keep>.
      rotate: Math.max(1, Math.floor(keep)),
    });
    this.#stream = stream;
    this.#known = undefined;
    // 'open' comes right after the stream opened the path (at start and after each
    // rotation), so what the path names then is the file it writes to.
    stream.on('open', () => {
      if (stream !== this.#stream) return;
      const seen = this.#identity();
      this.#known = seen === 'unknown' ? undefined : seen;
    });
    stream.on('rotation', () => {
      if (stream === this.#stream) this.#known = undefined;
    });
    stream.on('error', (err: Error) => {
      if (stream !== this.#stream) return; // a replaced stream's last writes: they went to the removed file anyway
      this.failed = err;
      this.#logger.error('worker log file failed; worker output is no longer written', { dir, error: err.message });
    });
    stream.on('warning', (err: Error) => this.#logger.warn('worker log file warning', { dir, error: err.message }));
  }

  /** What the path names now: its file, undefined when nothing is there, 'unknown' when it cannot be looked at. */
  #identity(): { dev: number; ino: number } | undefined | 'unknown' {
    try {
      const st = statSync(this.#path, { throwIfNoEntry: false });
      return st ? { dev: st.dev, ino: st.ino } : undefined;
    } catch {
      return 'unknown'; // the folder cannot be searched (EACCES): keep writing where the stream does
    }
  }

  #check(): void {
    const known = this.#known;
    const now = Date.now();
    const every = this.#opts.checkMs ?? LOG_FILE_CHECK_MS;
    if (!known || now - this.#lastCheck < every) return;
    this.#lastCheck = now;
    const seen = this.#identity();
    if (seen === 'unknown' || (seen && seen.dev === known.dev && seen.ino === known.ino)) return;
    const was = seen ? 'replaced by another file' : 'removed';
    this.#stream.end();
    try {
      prepareFolder(this.#opts.dir, this.#opts.name, 'logs.dir');
    } catch (err) {
      this.failed = err as Error;
      this.#logger.error(`worker log file ${this.#path} was ${was} and cannot be created again; worker output is no longer written`, {
        error: (err as Error).message,
      });
      return;
    }
    this.#open();
    this.#logger.warn(
      `worker log file ${this.#path} was ${was}; writing to ${this.#path} again (lines written up to ${every} ms before this went to the old file)`,
      { path: this.#path },
    );
  }
}
