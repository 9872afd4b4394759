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

/**
 * How often, at most, a stream stopped by an error (a full disk: ENOSPC) is opened again, on
 * the next line after that long. A failure is often passing (space freed, a folder put back):
 * without this, output stayed off until a reload changed a `logs.*` key.
 */
export const LOG_FILE_RETRY_MS = 5000;

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
  /** After an error, open the file again at most this often, ms. Default {@link LOG_FILE_RETRY_MS}. */
  retryMs?: number;
  /** The clock of the retries (tests). Default Date.now. */
  now?: () => number;
}

/**
 * A rotating log stream that re-creates its folder and file when they are removed or
 * replaced, logging one warning each time. `failed` is set once a stream error or a
 * folder that cannot be made again stops it; lines are then refused (`write` returns false)
 * until the next line after {@link LOG_FILE_RETRY_MS}, which opens the file again; once a
 * line is written there, one warning says so and how many lines were dropped meanwhile. An
 * error while it is still off logs nothing more (one error per outage).
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
  /** Since the stream stopped (Date.now()): the last time it was stopped or tried again. */
  #failedAt = 0;
  /** Lines refused since the stream stopped. */
  #dropped = 0;
  /** Opened again after an error, and no line confirmed written yet: an error then is the same outage. */
  #retrying = false;

  constructor(create: CreateStream, opts: LogStreamOptions, logger: Logger) {
    this.#create = create;
    this.#opts = opts;
    this.#logger = logger;
    this.#path = join(opts.dir, opts.name);
    this.#open();
  }

  /** Writes one whole line; false when the stream has stopped (the line is dropped). */
  write(text: string): boolean {
    if (this.failed) this.#retry();
    if (this.failed || this.#stream.writableEnded) {
      this.#dropped++;
      return false;
    }
    this.#check();
    if (this.failed) {
      this.#dropped++;
      return false;
    }
    // No backpressure wait on purpose: the master must never stall on a slow disk;
    // the stream buffers in memory meanwhile, so nothing is lost.
    if (!this.#retrying) this.#stream.write(text);
    else {
      const stream = this.#stream;
      this.#stream.write(text, (err) => {
        if (err || stream !== this.#stream || !this.#retrying) return;
        this.#retrying = false;
        this.#logger.warn(`worker log file ${this.#path} is written again; ${this.#dropped} line${this.#dropped === 1 ? ' was' : 's were'} dropped while it was not`, {
          path: this.#path, dropped: this.#dropped,
        });
        this.#dropped = 0;
      });
    }
    return true;
  }

  /** Opens the file again once {@link LOG_FILE_RETRY_MS} passed since it failed (or was last tried). */
  #retry(): void {
    const now = (this.#opts.now ?? Date.now)();
    if (now - this.#failedAt < (this.#opts.retryMs ?? LOG_FILE_RETRY_MS)) return;
    this.#failedAt = now;
    this.#stream.destroy();
    try {
      prepareFolder(this.#opts.dir, this.#opts.name, 'logs.dir');
    } catch {
      return; // still not writable: the next try after the same wait
    }
    this.failed = undefined;
    this.#retrying = true;
    this.#open();
  }

  /** Stops the stream after `err`; said once per outage. */
  #fail(err: Error, say: () => void): void {
    this.failed = err;
    this.#failedAt = (this.#opts.now ?? Date.now)();
    if (this.#retrying) return;
    this.#dropped = 0;
    say();
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
      this.#fail(err, () => this.#logger.error(
        `worker log file failed; worker output is not written until it can be again (tried on the next line after ${(this.#opts.retryMs ?? LOG_FILE_RETRY_MS) / 1000} s)`,
        { dir, error: err.message },
      ));
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
      this.#fail(err as Error, () => this.#logger.error(
        `worker log file ${this.#path} was ${was} and cannot be created again; worker output is not written until it can be`,
        { error: (err as Error).message },
      ));
      return;
    }
    this.#open();
    this.#logger.warn(
      `worker log file ${this.#path} was ${was}; writing to ${this.#path} again (lines written up to ${every} ms before this went to the old file)`,
      { path: this.#path },
    );
  }
}
