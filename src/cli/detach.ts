/**
 * `hitless start --detach`: the master in the background, the shell back once its first
 * generation serves (what `pm2 start` users expect). The master runs as a new session
 * (no terminal: closing it or Ctrl-C does not reach the master) with its stdout and stderr,
 * worker output included in the default `logs.mode: "inherit"`, appended to one file that
 * `hitless logs` reads. Until the first generation is ready the lines written there are
 * shown here too; a master that fails to start gives its exit code back.
 *
 * The file is not rotated (the master only appends): for a long-lived service use
 * `hitless startup` (systemd and its journal) or `logs.mode: "file"` (rotated files).
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync, fstatSync } from 'node:fs';
import { ensureRunDir } from '../config/rundir.js';
import { prepareOutputFile } from '../config/output-file.js';
import { refuseSecondMaster } from '../master/occupied.js';
import { join, resolve } from 'node:path';
import { LOG_FILE_NAME } from '../ops/logfiles.js';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../control/client.js';
import type { MasterConfig } from '../config/types.js';
import type { StatusSnapshot } from '../core/types.js';
import { DEFAULT_STAY_READY_MS } from '../config/defaults.js';

/** The detached master's output file, in the app folder, unless --log-file says otherwise. */
export const DETACHED_LOG_FILE = 'hitless.log';
/**
 * In the run dir (which outlives the master: only its socket goes at the stop), the path
 * of the last detached master's output file, so `hitless logs` shows that one once the
 * master is gone, --log-file or not (report h16 F9: it showed an older ./hitless.log).
 */
export const DETACHED_RECORD = 'detached-output';
/** How often the waiting CLI looks at the file and asks the master how far it got. */
const POLL_MS = 100;
/**
 * Every worker of the first generation must stay ready for the configuration's `stayReady`
 * (1 s by default; the same time a reload's new workers must before it is done; 0: no wait)
 * before the start is said to have worked: a worker that
 * dies right after READY (an app throwing once it listens) fails the start, as it does with
 * several workers while the others boot, instead of "runs in the background: 0 workers
 * ready" and a crash loop. And for this many status answers in a row: on a machine busy
 * enough to starve this command, a second of its clock may pass between two answers, and
 * the master must have had turns to see a worker exit.
 */
const SETTLE_ANSWERS = 5;
/** Flags only the detaching CLI reads; the master never sees them. */
const DETACH_FLAGS = ['--detach', '-d'];
const LOG_FILE_FLAG = '--log-file';

/**
 * `argv` without --detach and --log-file (flags only: everything after `--` is the
 * worker command and stays as written).
 *
 * @example
 * withoutDetachFlags(['--detach', '--log-file', 'x.log', '--listen', '8080', '--', 'node', 'a.js']);
 * // ['--listen', '8080', '--', 'node', 'a.js']
 */
export function withoutDetachFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...out, ...argv.slice(i)];
    if (DETACH_FLAGS.includes(arg) || arg.startsWith(`${LOG_FILE_FLAG}=`)) continue;
    if (arg === LOG_FILE_FLAG) {
      i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/** Appends what was written to `fd` since `from` to `out`; returns the new offset. */
function copyNew(fd: number, from: number, out: (text: string) => void): number {
  const size = fstatSync(fd).size;
  if (size <= from) return from;
  const buf = Buffer.alloc(size - from);
  const n = readSync(fd, buf, 0, buf.length, from);
  out(buf.subarray(0, n).toString('utf8'));
  return from + n;
}

/**
 * Starts the master detached and waits until its first generation serves (exit 0, with
 * where it runs and how to reach it) or it exits (its exit code, its lines shown).
 * `config` is the validated configuration (the master validates it again itself).
 */
export async function runDetached(argv: string[], config: MasterConfig, logFileFlag: string | undefined): Promise<number> {
  const logFile = logFileFlag === undefined ? resolve(config.appDir, DETACHED_LOG_FILE) : resolve(logFileFlag);
  // A master already running here: said by this command, before anything is spawned or
  // written into the running master's output file.
  await refuseSecondMaster(config.runDir, config.appDir);
  prepareOutputFile(logFile, logFileFlag === undefined ? 'the detached master\'s output' : '--log-file');
  recordOutput(config.runDir, logFile);
  const out = openSync(logFile, 'a');
  writeSync(out, `--- hitless start --detach, ${new Date().toISOString()} ---\n`);
  const reader = openSync(logFile, 'r');
  let offset = fstatSync(reader).size;
  const cli = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'start', ...withoutDetachFlags(argv)], {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  closeSync(out);
  const exited = new Promise<number>((resolveExit) => child.once('exit', (code, signal) => resolveExit(code ?? (signal ? 1 : 0))));
  let exitCode: number | undefined;
  void exited.then((code) => (exitCode = code));
  const show = (text: string): void => void process.stderr.write(text);
  let settledFrom: number | undefined;
  let settledAnswers = 0;
  // Ctrl-C here stops the waiting, not the master (its own session): say that it goes on.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => void (interrupted ??= signal);
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      offset = copyNew(reader, offset, show);
      if (interrupted !== undefined && exitCode === undefined) {
        child.unref();
        process.stderr.write(`hitless: stopped waiting (${interrupted}); the master (pid ${String(child.pid)}) goes on starting in the background: ` +
          `\`hitless status\` shows how far it got, \`hitless stop\` stops it; its output is in ${logFile}\n`);
        return interrupted === 'SIGINT' ? 130 : 143;
      }
      if (exitCode !== undefined) {
        copyNew(reader, offset, show);
        process.stderr.write(`hitless: the master exited (code ${exitCode}) before its first generation was ready; its output is above and in ${logFile}\n`);
        return exitCode === 0 ? 1 : exitCode;
      }
      const status = await controlRequest(config.runDir, 'status', {}, { timeoutMs: 1000 }).catch(() => undefined) as StatusSnapshot | undefined;
      if (status && status.pid === child.pid && status.generation >= 1 && (status.state === 'running' || status.state === 'reloading')) {
        const lost = exitedAfterReady(status, config.workers);
        if (lost !== undefined) {
          await controlRequest(config.runDir, 'stop', { force: true }, { timeoutMs: 5000 }).catch(() => undefined);
          await exited;
          copyNew(reader, offset, show);
          const why = `generation 1 went live, but ${lost} right after it was ready: the start failed and the master was stopped`;
          // The file says why too: the master's own last line there is a plain "master stopped".
          appendFileSync(logFile, `--- hitless start --detach: ${why} (ERR_START_FAILED) ---\n`);
          process.stderr.write(`hitless: ${why}; its output is above and in ${logFile} (ERR_START_FAILED)\n`);
          return 1;
        }
        settledFrom ??= Date.now();
        settledAnswers++;
        if (Date.now() - settledFrom < (config.stayReady ?? DEFAULT_STAY_READY_MS) || settledAnswers < SETTLE_ANSWERS) continue;
        child.unref();
        // The lines written between the last copy and the answer ("master ready" among them).
        copyNew(reader, offset, show);
        process.stdout.write(describeDetached(status, logFile, config.logs.mode === 'file' ? join(config.logs.dir, LOG_FILE_NAME) : undefined));
        return 0;
      }
    }
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    closeSync(reader);
  }
}

/** Writes where this detached master's output goes into its run dir (made now if need be). */
function recordOutput(runDir: string, logFile: string): void {
  try {
    ensureRunDir(runDir);
    writeFileSync(join(runDir, DETACHED_RECORD), `${logFile}\n`, { mode: 0o600 });
  } catch {
    // Only `hitless logs` reads it, and a run dir the master cannot use either is said by the master.
  }
}

/**
 * The output file of the last master started with --detach for `runDir`, as recorded
 * then; undefined when none was recorded (none yet, or a run dir cleaned since).
 *
 * @example
 * lastDetachedOutput('/run/user/1000/hitless-1000/3f2a…'); // '/srv/app/hitless.log'
 */
export function lastDetachedOutput(runDir: string): string | undefined {
  try {
    return readFileSync(join(runDir, DETACHED_RECORD), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Which workers of the serving generation exited after they were ready (restarted, given
 * up, or gone and not yet restarted), said for a message; undefined when all `workers` serve.
 */
export function exitedAfterReady(s: StatusSnapshot, workers: number): string | undefined {
  const mine = s.workers.filter((w) => w.generation === s.generation);
  const lost = mine.filter((w) => w.restarts > 0 || w.state === 'failed').map((w) => `${w.generation}.${w.slot}`);
  for (let slot = 0; slot < workers; slot++) {
    if (!mine.some((w) => w.slot === slot)) lost.push(`${s.generation}.${slot}`);
  }
  if (lost.length === 0) return undefined;
  return `${lost.length === 1 ? 'worker' : 'workers'} ${lost.sort().join(', ')} exited`;
}

/**
 * What `hitless start --detach` prints once the master serves. `workersLog`: the workers'
 * log file, when `logs.mode` is "file" (then `hitless logs` reads that one, and the output
 * file holds only the master's own lines).
 */
export function describeDetached(s: StatusSnapshot, logFile: string, workersLog?: string): string {
  const ready = s.workers.filter((w) => w.generation === s.generation && w.state === 'ready').length;
  const listen = s.listeners.map((l) => `${l.name} ${l.address}`).join(', ');
  const output = workersLog === undefined
    ? `  output   ${logFile}   (hitless logs -f)\n`
    : `  output   ${logFile}   (the master's own lines)\n  workers  ${workersLog}   (hitless logs -f)\n`;
  return `hitless master pid ${s.pid} runs in the background: generation ${s.generation}, ${ready} worker${ready === 1 ? '' : 's'} ready, ${listen}\n` +
    output +
    '  manage   hitless status · hitless reload · hitless stop   (in this folder); hitless list shows every master\n';
}
