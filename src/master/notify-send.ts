/**
 * One notify message sent by one run of systemd's `systemd-notify` (notify.ts says why a
 * program and not a socket of the master's own), bounded by a kill timeout; and whether a
 * program is on PATH.
 */
import { spawn } from 'node:child_process';
import { locate } from '../config/command-check.js';

export const NOTIFY_PROGRAM = 'systemd-notify';

/**
 * How long one `systemd-notify` run may take before it is killed: above its own 5 s
 * barrier timeout (which ends it by itself when systemd took the datagram but never
 * answered), for a run blocked in sendmsg on a full queue, which has no timeout.
 */
export const NOTIFY_TIMEOUT_MS = 6_000;

export interface NotifySendOptions {
  /** Kill the sender after this many ms. */
  timeoutMs: number;
  /** Aborted when the master ends: the sender is killed at once. */
  signal: AbortSignal;
}

/** Sends one notify message (its VAR=VALUE lines); rejects with why it could not. */
export type NotifySend = (fields: string[], env: NodeJS.ProcessEnv, options: NotifySendOptions) => Promise<void>;

/**
 * True when `program` is an executable file on `path`.
 *
 * @example
 * onPath('systemd-notify'); // true on a machine with systemd
 */
export function onPath(program: string, path = process.env.PATH ?? ''): boolean {
  return locate(program, process.cwd(), path) !== undefined;
}

/** One run of `systemd-notify -- <fields…>`, waiting for systemd to have processed it, killed after `timeoutMs`. */
export const runSystemdNotify: NotifySend = (fields, env, { timeoutMs, signal }) => new Promise((resolve, reject) => {
  const child = spawn(NOTIFY_PROGRAM, ['--', ...fields], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL', signal });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.on('error', (err) => reject(signal.aborted ? new Error(`${NOTIFY_PROGRAM} was stopped: the master ends`) : err));
  child.on('close', (code, killedBy) => {
    if (code === 0) resolve();
    // Killed by the timeout (an abort rejected already, through 'error').
    else if (killedBy === 'SIGKILL') reject(new Error(`${NOTIFY_PROGRAM} did not finish within ${seconds(timeoutMs)}, killed: the notify socket ${env.NOTIFY_SOCKET ?? ''} takes no messages (its reader is stuck or gone, its queue full)`));
    else reject(new Error(stderr.trim() || `${NOTIFY_PROGRAM} ended with ${killedBy ?? `code ${String(code)}`}`));
  });
});

const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);
