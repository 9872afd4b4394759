/**
 * The client side of the control protocol, used by `hitless reload|status|stop` (and by
 * anything else that drives a running master).
 */
import { connect } from 'node:net';
import { codes, HitlessError, type HitlessErrorCode } from '../errors.js';
import { controlSocketPath } from '../config/rundir.js';
import { formatDuration } from '../config/duration.js';
import { LineSplitter } from '../core/lines.js';
import { DENIED_ERRNOS, socketAccessError } from './access.js';
import { encode, PROTOCOL_VERSION, type ControlCommand } from './protocol.js';
import type { MasterEvent } from '../core/types.js';

/** Longest response line the client accepts (a status of many workers is a few KiB). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface ControlRequestOptions {
  /** Called for every event the master streams before its answer (reload progress). */
  onEvent?: (event: MasterEvent) => void;
  /** Give up after this many ms (ERR_CONTROL_TIMEOUT); default: wait as long as the master works. */
  timeoutMs?: number;
  /**
   * Resolve when the master closes the connection rather than at its answer, passing the
   * events it sends after the answer to `onEvent` too (`stop`: the master's own end).
   */
  untilClose?: boolean;
  /** Called with the master's answer as it arrives (with `untilClose`, before the promise resolves). */
  onAnswer?: (result: unknown) => void;
}

let nextId = 1;

/**
 * Sends one command to the master of `runDir` and resolves with its result.
 *
 * @throws HitlessError ERR_NO_MASTER when nothing listens; ERR_CONTROL_ACCESS when this user
 *   may not connect (another user's master); the master's own error (its
 *   code and message) when it refused; ERR_CONTROL_TIMEOUT after `timeoutMs`.
 * @example
 * const status = await controlRequest(runDir, 'status') as StatusSnapshot;
 * const outcome = await controlRequest(runDir, 'reload', {}, { onEvent: (e) => console.log(e.type) });
 */
export function controlRequest(
  runDir: string,
  cmd: ControlCommand,
  args: Record<string, unknown> = {},
  options: ControlRequestOptions = {},
): Promise<unknown> {
  const path = controlSocketPath(runDir);
  const id = nextId++;
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    let connected = false;
    // With untilClose: the answer, kept until the master closes the connection.
    let answer: { result: unknown } | undefined;
    const socket = connect(path);
    const finish = (err: Error | undefined, result?: unknown): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolvePromise(result);
    };
    // Whether the master streamed progress: then it did answer, and the command was still
    // under way at the time limit (a reload queued or rolling out), not unheard.
    let heard = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      finish(new HitlessError('ERR_CONTROL_TIMEOUT', heard
        ? `"${cmd}" was still running in the master at the --timeout of ${formatDuration(options.timeoutMs!)}; it goes on there (see \`hitless status\`)`
        : `the master did not answer "${cmd}" within ${formatDuration(options.timeoutMs!)} (it may still be working; see \`hitless status\`)`));
    }, options.timeoutMs);
    socket.once('connect', () => {
      connected = true;
      socket.write(encode({ v: PROTOCOL_VERSION, id, cmd, args }));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The master answered and then ended (a reset as its process exits): that is the close.
      if (answer) return finish(undefined, answer.result);
      if (!connected && DENIED_ERRNOS.has(err.code)) {
        // Another user's master: "no master" would be false (and made `release` switch current).
        finish(socketAccessError(path, err));
      } else if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) {
        // ECONNREFUSED: the socket file is there and nothing listens on it. A master that
        // stops removes it; one killed (SIGKILL, a crash) leaves it, and `hitless start` clears it.
        const left = err.code === 'ECONNREFUSED' ? ' (its socket file is left over: the master that made it ended without stopping, killed or crashed)' : '';
        finish(new HitlessError('ERR_NO_MASTER',
          `no master is running at ${path}${left}; start it with \`hitless start\` in the app folder, or pass --run-dir (\`hitless list\` shows every master on this machine)`, { cause: err }));
      } else {
        finish(new HitlessError('ERR_NO_MASTER', `lost the connection to the master at ${path}: ${err.message}`, { cause: err }));
      }
    });
    socket.on('close', () => {
      if (answer) return finish(undefined, answer.result);
      // Killed or crashed under the request, most likely: control/dropped.ts finds out for reload and upgrade.
      finish(new HitlessError('ERR_CONTROL_PROTOCOL', `the master closed the control connection before answering "${cmd}"`, { details: { closedBeforeAnswer: true } }));
    });
    const onLine = (line: string): void => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return finish(new HitlessError('ERR_CONTROL_PROTOCOL', 'the master sent a line that is not JSON'));
      }
      if (msg.id !== id && msg.id !== null) return;
      if ('event' in msg) {
        heard = true;
        options.onEvent?.(msg.event as MasterEvent);
        return;
      }
      if (msg.ok === true) {
        options.onAnswer?.(msg.result);
        if (!options.untilClose) return finish(undefined, msg.result);
        answer = { result: msg.result };
        heard = true;
        return;
      }
      const error = (msg.error ?? {}) as { code?: string; message?: string };
      const code: HitlessErrorCode = error.code && Object.hasOwn(codes, error.code) ? (error.code as HitlessErrorCode) : 'ERR_CONTROL_PROTOCOL';
      finish(new HitlessError(code, error.message ?? 'the master refused the request'));
    };
    const onOverflow = (): void => finish(new HitlessError('ERR_CONTROL_PROTOCOL', 'the master sent an oversized line'));
    const splitter = new LineSplitter({ maxBytes: MAX_RESPONSE_BYTES, onLine, onOverflow });
    socket.on('data', (chunk: Buffer) => splitter.push(chunk));
  });
}
