/**
 * Worker output to rotated files (config `logs.mode: 'file'`). The master pipes each
 * worker's stdout/stderr line by line and emits `worker-output` events; every line is
 * written here, in arrival order, to `<logs.dir>/workers.log`, rotated by size into
 * `workers.log.1` (newest) … `workers.log.<keep>` (oldest) — the logrotate layout, so
 * `hitless logs`, `tail -F` and log shippers all find it.
 *
 * rotating-file-stream is imported lazily: a master passing output through pays nothing.
 * It never splits one write across two files and queues writes during a rotation, so
 * rotation loses no line; each event is one write of one whole line. A folder or file
 * removed while the master runs is created again (log-stream.ts).
 */
import { prepareFolder } from '../config/output-file.js';
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { LogStream } from './log-stream.js';
import type { MasterConfig } from '../config/types.js';
import type { MasterEvent, MasterHandle } from '../core/types.js';

/** Name of the live log file inside `logs.dir`; rotated copies get `.1`, `.2`, … */
export const LOG_FILE_NAME = 'workers.log';

/** An open log sink. */
export interface LogFiles {
  /** Detaches from the master and resolves once every line received is on disk. */
  close(): Promise<void>;
}

/**
 * Formats one worker line as written to the file: with `tag`, prefixed by
 * `[generation.slot]` (and ` stderr` for the error stream, when `streamTag`: in a file both
 * streams meet, on a terminal they stay apart); with `time` (logs.timestamps), first the
 * moment the master read the line, ISO 8601 in UTC.
 *
 * @example
 * ```ts
 * formatLine({ generation: 3, slot: 1, stream: 'stderr', line: 'boom' }, true); // "[3.1 stderr] boom\n"
 * formatLine({ generation: 3, slot: 1, stream: 'stdout', line: 'up' }, false, Date.UTC(2026, 0, 2)); // "2026-01-02T00:00:00.000Z up\n"
 * ```
 */
export function formatLine(
  e: { generation: number; slot: number; stream: 'stdout' | 'stderr'; line: string },
  tag: boolean,
  time?: number,
  streamTag = true,
): string {
  const stamp = time === undefined ? '' : `${new Date(time).toISOString()} `;
  if (!tag) return `${stamp}${e.line}\n`;
  return `${stamp}[${e.generation}.${e.slot}${streamTag && e.stream === 'stderr' ? ' stderr' : ''}] ${e.line}\n`;
}

/**
 * Starts writing worker output to rotated files. The master calls it when
 * `config.logs.mode === 'file'` (and then does not forward worker lines itself), and
 * awaits `close()` as the very last step of stopping, after the last worker exited.
 *
 * @example
 * ```ts
 * const logFiles = config.logs.mode === 'file' ? await startLogFiles(config, master, logger) : undefined;
 * // … on stop, after every worker exited:
 * await logFiles?.close();
 * ```
 */
export async function startLogFiles(
  config: MasterConfig,
  master: MasterHandle,
  logger: Logger,
  options: { checkMs?: number } = {},
): Promise<LogFiles> {
  const { dir, maxSize, keep, tag, timestamps } = config.logs;
  // Not mkdir's recursive mode: it spins forever on a folder it can never create (/proc/…).
  prepareFolder(dir, LOG_FILE_NAME, 'logs.dir');
  const removed = pruneRotated(dir, keep);
  if (removed > 0) logger.info('removed rotated log files beyond logs.keep', { dir, keep: Math.max(1, Math.floor(keep)), removed });
  const { createStream } = await import('rotating-file-stream');
  const stream = new LogStream(createStream, { dir, name: LOG_FILE_NAME, maxSize, keep, checkMs: options.checkMs }, logger);

  let dropped = 0;
  const onEvent = (e: MasterEvent): void => {
    if (e.type !== 'worker-output') return;
    if (!stream.write(formatLine(e, tag, timestamps ? Date.now() : undefined))) dropped++;
  };
  master.on('event', onEvent);

  let closing: Promise<void> | undefined;
  return {
    close() {
      if (!closing) {
        master.off('event', onEvent);
        if (dropped > 0) logger.warn('worker log lines dropped after a log file error', { dropped });
        closing = stream.end();
      }
      return closing;
    },
  };
}

/**
 * Removes every `workers.log.<n>` with n above `keep`: the copies a larger `logs.keep` left
 * (the rotation itself only ever shifts up to `keep`, so after `keep` was lowered by a
 * reload or a restart they would stay for good), gaps in the numbering included. Returns how
 * many were removed; one that cannot be removed stays.
 */
export function pruneRotated(dir: string, keep: number, name = LOG_FILE_NAME): number {
  const limit = Math.max(1, Math.floor(keep));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const file of names) {
    const n = file.startsWith(`${name}.`) ? file.slice(name.length + 1) : '';
    if (!/^\d+$/.test(n) || Number(n) <= limit) continue;
    try {
      unlinkSync(join(dir, file));
      removed++;
    } catch {
      // not ours to remove (another user's, a folder): it stays
    }
  }
  return removed;
}

/**
 * Paths of the log files, oldest first: `workers.log.<keep>` … `workers.log.1`,
 * `workers.log` (another file `name` rotates the same way).
 */
export function logFilePaths(dir: string, keep: number, name = LOG_FILE_NAME): string[] {
  const out: string[] = [];
  for (let i = Math.max(1, Math.floor(keep)); i >= 1; i--) out.push(join(dir, `${name}.${i}`));
  out.push(join(dir, name));
  return out;
}
