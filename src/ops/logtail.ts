/**
 * Reading the rotated worker log files for `hitless logs`: the last N lines across
 * `workers.log.<keep>` … `workers.log`, and following `workers.log` across rotations
 * (like `tail -F`: the open descriptor is read to its end after the file is renamed away,
 * then the new file is opened).
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LOG_FILE_NAME, logFilePaths } from './logfiles.js';

const CHUNK = 64 * 1024;
/** How often `followLog` looks for new output. */
export const FOLLOW_POLL_MS = 200;

/** The last `n` lines of an open file, among its first `end` bytes. */
async function tailOfHandle(fh: FileHandle, n: number, end: number): Promise<string[]> {
  let pos = end;
  let text = '';
  // Read backwards until more than n newlines are in hand (or the file start).
  while (pos > 0 && text.split('\n').length <= n + 1) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos);
    text = buf.toString('utf8') + text;
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (pos > 0) lines.shift(); // possibly a partial first line
  return lines.slice(-n);
}

async function tailOfFile(path: string, n: number): Promise<string[]> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    return [];
  }
  try {
    return await tailOfHandle(fh, n, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

async function tailOfRotated(dir: string, keep: number, n: number, out: string[], name: string): Promise<void> {
  for (const path of logFilePaths(dir, keep, name).reverse().slice(1)) {
    if (out.length >= n) return;
    out.unshift(...(await tailOfFile(path, n - out.length)));
  }
}

/**
 * The last `n` lines written to the worker logs in `dir`, oldest first, across rotations
 * (`name`: another file than workers.log, such as a detached master's output file).
 *
 * @example
 * ```ts
 * for (const line of await readLastLines('/var/log/app', 5, 100)) console.log(line);
 * ```
 */
export async function readLastLines(dir: string, keep: number, n: number, name = LOG_FILE_NAME): Promise<string[]> {
  if (n <= 0) return [];
  const out = await tailOfFile(join(dir, name), n);
  await tailOfRotated(dir, keep, n, out, name);
  return out;
}

/** Options of {@link followLog}. */
export interface FollowOptions {
  /** Poll interval (default {@link FOLLOW_POLL_MS}). */
  pollMs?: number;
  /** Called once the file is open at its end: lines appended from now on are seen. */
  onOpen?: () => void;
  /**
   * First pass the last `backlog` lines written before following began (default 0),
   * read from the same open file so no line falls between the backlog and the follow.
   */
  backlog?: number;
  /** Rotated files to look through for the backlog (default 5). */
  keep?: number;
  /** The file in `dir` to follow (default workers.log). */
  name?: string;
}

/**
 * Calls `onLine` for every line appended to `<dir>/workers.log` from its current end,
 * across rotations, until `signal` aborts. Resolves when stopped. Like `tail -F`, it
 * polls: if the file rotates more than once between two polls, the files in between
 * are skipped (use a larger `logs.maxSize`, or `hitless logs -n`, to read them).
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * process.once('SIGINT', () => ac.abort());
 * await followLog(dir, (line) => process.stdout.write(line + '\n'), ac.signal);
 * ```
 */
export async function followLog(
  dir: string, onLine: (line: string) => void, signal: AbortSignal, options: FollowOptions = {},
): Promise<void> {
  const pollMs = options.pollMs ?? FOLLOW_POLL_MS;
  const name = options.name ?? LOG_FILE_NAME;
  const path = join(dir, name);
  let fh: FileHandle | undefined;
  let ino = -1;
  let pos = 0;
  let partial = '';

  const drain = async (): Promise<void> => {
    if (!fh) return;
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      const lines = (partial + buf.subarray(0, bytesRead).toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    }
  };
  const reopen = async (fromEnd: boolean): Promise<void> => {
    try {
      const next = await open(path, 'r');
      const st = await next.stat();
      await fh?.close();
      fh = next;
      ino = st.ino;
      pos = fromEnd ? st.size : 0;
      partial = '';
    } catch {
      // not created yet: try again next tick
    }
  };

  await reopen(true);
  if (options.backlog) {
    const backlog = fh ? await tailOfHandle(fh, options.backlog, pos) : [];
    await tailOfRotated(dir, options.keep ?? 5, options.backlog, backlog, name);
    for (const line of backlog) onLine(line);
  }
  options.onOpen?.();
  try {
    while (!signal.aborted) {
      await drain();
      const st = await stat(path).catch(() => undefined);
      if (st && st.ino !== ino) {
        await drain(); // the rest of the rotated-away file
        if (partial) onLine(partial);
        await reopen(false);
        continue;
      }
      if (st && st.size < pos) pos = 0; // truncated in place (copytruncate)
      await new Promise<void>((resolve) => {
        const onAbort = (): void => { clearTimeout(t); resolve(); };
        const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, pollMs);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  } finally {
    await fh?.close();
  }
}
