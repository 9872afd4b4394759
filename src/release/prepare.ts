/**
 * Runs the release's `prepare` command (config `release.prepare`, argv form, e.g.
 * `["npm", "ci", "--omit=dev"]`) inside the new release folder, before it is switched
 * to. Its output is passed on as it comes (the CLI shows it; the fetcher logs it) and
 * its last lines go into the error when it fails.
 */
import { spawn } from 'node:child_process';
import { abortReason, HitlessError } from '../errors.js';

/** Lines of output kept for the error report. */
export const PREPARE_OUTPUT_TAIL = 30;

export type OutputSink = (stream: 'stdout' | 'stderr', chunk: string) => void;

/** Why a prepare was stopped: the abort reason (`hitless release` gives the signal's name). */
function stopped(argv: string[], signal: AbortSignal): HitlessError {
  const why = abortReason(signal);
  return new HitlessError('ERR_RELEASE_INTERRUPTED', `prepare command ${JSON.stringify(argv)} was stopped (${why})`);
}

/**
 * Runs `argv` in `cwd`; resolves when it exits 0, throws ERR_RELEASE_PREPARE otherwise.
 * Aborting `signal` sends the command SIGTERM and throws ERR_RELEASE_INTERRUPTED once it
 * has exited.
 *
 * @example
 * await runPrepare(['npm', 'ci', '--omit=dev'], '/srv/app/releases/v2', { HITLESS_RELEASE: 'v2' },
 *   (stream, chunk) => process[stream].write(chunk));
 */
export function runPrepare(argv: string[], cwd: string, env: Record<string, string>, onOutput?: OutputSink, signal?: AbortSignal): Promise<void> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.resolve();
  if (signal?.aborted) return Promise.reject(stopped(argv, signal));
  return new Promise((resolve, reject) => {
    const tail: string[] = [];
    const keep = (text: string): void => {
      tail.push(...text.split('\n').filter((l) => l !== ''));
      tail.splice(0, Math.max(0, tail.length - PREPARE_OUTPUT_TAIL));
    };
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream].setEncoding('utf8');
      child[stream].on('data', (chunk: string) => {
        keep(chunk);
        onOutput?.(stream, chunk);
      });
    }
    const stop = (): void => { child.kill('SIGTERM'); };
    signal?.addEventListener('abort', stop, { once: true });
    // Stopped: done when the command has exited, not when every process holding its output
    // pipes has (a background grandchild may hold them much longer).
    child.on('exit', () => {
      signal?.removeEventListener('abort', stop);
      if (signal?.aborted) reject(stopped(argv, signal));
    });
    child.on('error', (err) => {
      signal?.removeEventListener('abort', stop);
      reject(new HitlessError('ERR_RELEASE_PREPARE', `prepare command ${JSON.stringify(argv)} could not start: ${err.message}`, {
        cause: err, details: { output: tail },
      }));
    });
    child.on('close', (code, killedBy) => {
      if (code === 0) return resolve();
      const how = killedBy ? `was killed by ${killedBy}` : `exited with code ${code}`;
      reject(new HitlessError('ERR_RELEASE_PREPARE', `prepare command ${JSON.stringify(argv)} ${how}`, {
        details: { output: tail, exitCode: code, signal: killedBy },
      }));
    });
  });
}
