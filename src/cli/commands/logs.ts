/**
 * `hitless logs [-f] [-n N]`: shows the workers' output. With `logs.mode: "file"` it
 * reads the rotated files (the last N lines across them, then optionally follows new
 * lines). With the default `"inherit"` output goes to the master's own stdout: when that
 * is a file (a master started with `--detach`) it reads that file; otherwise it says
 * where the output is (the master's terminal, its systemd unit's journal, the program
 * that started it) and how to get it into files.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { HitlessError } from '../../errors.js';
import { findConfigFile, readConfigFileOr } from '../../config/file.js';
import { findRunDir } from '../../control/find.js';
import { DEFAULT_LOGS } from '../../config/defaults.js';
import { controlRequest } from '../../control/client.js';
import type { StatusSnapshot } from '../../core/types.js';
import { LOG_FILE_NAME } from '../../ops/logfiles.js';
import { followLog, readLastLines } from '../../ops/logtail.js';
import { masterOutput, type OutputTarget } from '../../ops/stdout.js';
import type { Command } from '../command.js';
import { DETACHED_LOG_FILE, lastDetachedOutput } from '../detach.js';
import { onOutputClosed } from '../pipe.js';
import { parseFlags } from '../flags.js';

/** Lines shown when -n is not given (like tail). */
export const DEFAULT_LOG_LINES = 10;
/** How long the master of this folder has to answer `status`. */
const PROBE_TIMEOUT_MS = 2000;

const usage = `Usage: hitless logs [-f] [-n N] [--config FILE] [--dir DIR] [--run-dir DIR]

Shows the workers' output:
  - written to rotated files when hitless.json has
      "logs": { "mode": "file", "dir": "logs", "maxSize": "10MB", "keep": 5, "tag": true }
  - or, with "logs.mode": "inherit" (the default), the output file of a master started
    with \`hitless start --detach\` (${DETACHED_LOG_FILE} in the app folder, or its --log-file).
For a master in a terminal, under systemd or supervisord, it says where the output goes.

  -n, --lines N     show the last N lines (default ${DEFAULT_LOG_LINES}; 0 shows none)
  -f, --follow      keep printing new lines, across rotations, until Ctrl-C
  -c, --config FILE the app's config file (default: ./hitless.json)
      --dir DIR     read this log folder instead of the config's logs.dir
      --run-dir DIR the master to ask where its output goes, when it was started with --run-dir
  -h, --help        show this help`;

function parse(argv: string[]): { follow: boolean; lines: number; config: string | undefined; dir: string | undefined; runDir: string | undefined } {
  // One-line usage errors like every other command's (Node's own text for `-n -1` is three lines).
  const { values } = parseFlags('logs', argv, {
    follow: { type: 'boolean', short: 'f' },
    lines: { type: 'string', short: 'n' },
    config: { type: 'string', short: 'c' },
    dir: { type: 'string' },
    'run-dir': { type: 'string' },
  });
  const linesText = values.lines ?? String(DEFAULT_LOG_LINES);
  if (!/^\d+$/.test(linesText)) {
    throw new HitlessError('ERR_USAGE', `logs: -n ${JSON.stringify(linesText)} is not a whole number; write for example -n 100`);
  }
  return { follow: values.follow ?? false, lines: Number(linesText), config: values.config, dir: values.dir, runDir: values['run-dir'] };
}

/** What `hitless logs` reads: a folder of rotated files, or one file. */
interface LogSource {
  dir: string;
  name: string;
  keep: number;
  /** Said on stderr before the lines (why this file). */
  note?: string;
}

/** How to get worker output into something `hitless logs` reads. */
const FIX = 'to read it with `hitless logs`, start the master with `hitless start --detach` (output to a file), ' +
  'or add "logs": { "mode": "file" } to hitless.json (rotated files)';

/**
 * Where worker output goes when it is not in files, as one message.
 *
 * @example
 * explainInherit({ kind: 'journal', unit: 'myapp.service' }, 4242); // 'worker output goes to the journal of myapp.service: journalctl -u myapp.service -f'
 */
export function explainInherit(target: OutputTarget | undefined, pid: number | undefined, where: string, flagsOnly = false): string {
  const prefix = 'logs: worker output is not written to files ("logs.mode" is "inherit", the default)';
  if (target === undefined || pid === undefined) {
    return `${prefix} and no master runs for ${where}: when one runs, its output goes to its own stdout (its terminal, journal or log); ${FIX}`;
  }
  const goes = `${prefix}: it goes to`;
  switch (target.kind) {
    case 'journal':
      return `${goes} the journal of ${target.unit} (master pid ${pid}): journalctl -u ${target.unit} -f`;
    case 'file':
      return `${goes} ${target.path}`;
    default:
  }
  const place = target.kind === 'terminal' ? `the terminal the master (pid ${pid}) runs in, ${target.path}`
    // The program reading the pipe runs the master in the foreground.
    : target.kind === 'pipe' ? `the master's stdout (pid ${pid}), a pipe to ${target.parent ?? 'the program that started it'} (supervisord's stdout_logfile, docker logs, …), which stores it`
    : `the master's stdout (pid ${pid}); ${target.why}`;
  // A master started without a config file never reads one (CONFIG.md): a reload cannot turn files on.
  if (flagsOnly) {
    return `${goes} ${place}. This master was started with flags only and never reads a hitless.json, so a reload cannot change that: ` +
      'to read it with `hitless logs`, put "logs": { "mode": "file" } in hitless.json and restart the master with it (`hitless stop`, then `hitless start` in the app folder)' +
      (target.kind === 'pipe' ? '' : ', or start it with `hitless start --detach` (output to a file)');
  }
  switch (target.kind) {
    case 'terminal':
      return `${goes} ${place}; look there, or ${FIX}`;
    case 'pipe':
      // --detach would end the reading program's child (supervisord marks it FATAL, a container stops), so only the file mode fits.
      return `${goes} ${place}; to read it with \`hitless logs\` too, add "logs": { "mode": "file" } to hitless.json (rotated files) and reload`;
    default:
      return `${goes} ${place}; ${FIX}`;
  }
}

/** The source for the files-mode config, the detached master's file, or an ERR_USAGE saying where output goes. */
async function locate(opts: { config: string | undefined; dir: string | undefined; runDir: string | undefined }): Promise<LogSource> {
  // With --dir the retention is unknown: look for many rotated files.
  if (opts.dir !== undefined) {
    const dir = resolve(opts.dir);
    // An empty answer would look like a quiet app: a folder that is not there is a typo.
    if (!existsSync(dir)) throw new HitlessError('ERR_USAGE', `logs: --dir ${dir}: no such folder (the config's logs.dir, relative to the app folder, is where the files are)`);
    return { dir, name: LOG_FILE_NAME, keep: 100 };
  }
  const cwd = process.cwd();
  const configPath = findConfigFile(opts.config, cwd);
  // A broken file does not hide the output: the running master says where it goes
  // (findRunDir below prints the file's problem).
  const file = configPath === undefined ? {} : readConfigFileOr(configPath, () => {});
  const appDir = configPath === undefined ? cwd : dirname(configPath);
  const logs = (typeof file.logs === 'object' && file.logs !== null ? file.logs : {}) as { mode?: unknown; dir?: unknown; keep?: unknown };
  const filesDir = logs.mode === 'file' ? resolve(appDir, typeof logs.dir === 'string' ? logs.dir : DEFAULT_LOGS.dir) : undefined;
  // The file's folder is there once a master applied it: read it without asking the master.
  if (filesDir !== undefined && existsSync(filesDir)) {
    return { dir: filesDir, name: LOG_FILE_NAME, keep: typeof logs.keep === 'number' ? logs.keep : DEFAULT_LOGS.keep };
  }
  let master: StatusSnapshot | undefined;
  let runDir: string | undefined;
  try {
    runDir = await findRunDir({ config: opts.config, runDir: opts.runDir, cwd });
    master = (await controlRequest(runDir, 'status', {}, { timeoutMs: PROBE_TIMEOUT_MS })) as StatusSnapshot;
  } catch {
    master = undefined;
  }
  const flagsOnly = master?.app !== undefined && master.app.configPath === undefined;
  if (filesDir !== undefined && !flagsOnly) {
    // Nothing written yet: an empty answer would look like a quiet app.
    throw new HitlessError('ERR_USAGE', master === undefined
      ? `logs: ${filesDir} does not exist: no master has written worker output there yet ("logs.mode" is "file" in ${configPath ?? appDir}); start one with \`hitless start\``
      : `logs: ${filesDir} does not exist yet: the master (pid ${master.pid}) writes worker output there once "logs.mode": "file" applies (\`hitless reload\`)`);
  }
  const target = master === undefined ? undefined : masterOutput(master.pid);
  if (target?.kind === 'file') return { dir: dirname(target.path), name: basename(target.path), keep: 0 };
  if (master === undefined) {
    const stopped = stoppedDetachedOutput(runDir, appDir);
    if (stopped) return stopped;
  }
  throw new HitlessError('ERR_USAGE', explainInherit(target, master?.pid, configPath ?? cwd, flagsOnly));
}

/**
 * With no master running: the output file of the last master started here with --detach,
 * as recorded in the run dir (its --log-file, or ./hitless.log); with no record, a
 * ./hitless.log said to be only where such masters write without --log-file.
 */
function stoppedDetachedOutput(runDir: string | undefined, appDir: string): LogSource | undefined {
  const recorded = runDir === undefined ? undefined : lastDetachedOutput(runDir);
  if (recorded !== undefined) {
    if (!existsSync(recorded)) throw new HitlessError('ERR_USAGE', `logs: no master runs here; the last master started here with --detach wrote its output to ${recorded}, which is not there any more`);
    return { dir: dirname(recorded), name: basename(recorded), keep: 0, note: `no master runs here; the output file of the last detached master (${recorded}):` };
  }
  const detached = resolve(appDir, DETACHED_LOG_FILE);
  if (!existsSync(detached)) return undefined;
  return {
    dir: appDir, name: DETACHED_LOG_FILE, keep: 0,
    note: `no master runs here; ${detached}, where a master started here with --detach writes without --log-file (this may not be the last one's):`,
  };
}

export const command: Command = {
  name: 'logs',
  usage,
  async run(argv) {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const opts = parse(argv);
    const source = await locate(opts);
    const { dir, name, keep } = source;
    if (source.note) process.stderr.write(`hitless: ${source.note}\n`);
    if (!opts.follow) {
      for (const line of await readLastLines(dir, keep, opts.lines, name)) process.stdout.write(line + '\n');
      return 0;
    }

    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const offClosed = onOutputClosed(stop);
    try {
      await followLog(dir, (line) => process.stdout.write(line + '\n'), ac.signal, { backlog: opts.lines, keep, name });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      offClosed();
    }
    return 0;
  },
};
