/**
 * What became of a master that closed the control connection before answering `hitless
 * reload` or `hitless upgrade` (killed, OOM, a crash; h21 F5): the client said only "the
 * master closed the control connection before answering", whether everything was down or
 * the upgrade had gone through. Asked afterwards: does the master (its pid, asked before the
 * request) still run, and who answers the control socket now — nobody, the new master of
 * the upgrade (which takes the control socket when its old master dies, and serves once
 * its first generation is ready: src/master/successor.ts), or another master.
 */
import { HitlessError, isHitlessError } from '../errors.js';
import type { StatusSnapshot } from '../core/types.js';
import { processEnded } from '../process-alive.js';
import { controlRequest } from './client.js';

/** How often the client asks again while the new master of an upgrade still starts. */
const POLL_MS = 100;
/** How long a master that closed the connection may take to end before it counts as still running. */
const DYING_MS = 2000;
/** How long one `status` may take here. */
const STATUS_TIMEOUT_MS = 5000;

/** The request the master dropped. */
export interface DroppedRequest {
  cmd: 'reload' | 'upgrade';
  /** The master's pid, asked before the request (undefined when that failed). */
  pid: number | undefined;
  /** An upgrade's new master, from its `starting` phase. */
  newPid?: number | undefined;
  /** The upgrade reached `committed` (the new master had the control socket) before the drop. */
  committed?: boolean;
  /** How long to wait for a new master still starting its first generation (undefined: while it runs). */
  timeoutMs?: number | undefined;
}

/** What the client says: a line of success (the upgrade's new master serves), or the error to end with. */
export type DropVerdict = { served: StatusSnapshot; line: string } | { error: HitlessError };

/** The OS, for tests. */
export interface DropSeams {
  /** The status of whatever answers the control socket now; throws as controlRequest does. */
  status(): Promise<StatusSnapshot>;
  /** Whether a process is gone or dying (process-alive.ts). */
  ended(pid: number): boolean;
  wait(ms: number): Promise<void>;
  now(): number;
}

/** The real seams for the master of `runDir`. */
export function dropSeams(runDir: string): DropSeams {
  return {
    status: async () => (await controlRequest(runDir, 'status', {}, { timeoutMs: STATUS_TIMEOUT_MS })) as StatusSnapshot,
    ended: processEnded,
    wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => Date.now(),
  };
}

/** True for the error controlRequest throws when the master closed the connection before answering. */
export function isDropped(err: unknown): boolean {
  return isHitlessError(err, 'ERR_CONTROL_PROTOCOL') && err.details.closedBeforeAnswer === true;
}

/** The master's pid, or undefined when it does not answer `status` (the request itself then says why). */
export async function masterPid(runDir: string, timeoutMs: number | undefined): Promise<number | undefined> {
  try {
    return ((await controlRequest(runDir, 'status', {}, { timeoutMs: timeoutMs ?? STATUS_TIMEOUT_MS })) as StatusSnapshot).pid;
  } catch {
    return undefined;
  }
}

const serving = (s: StatusSnapshot): boolean => s.state === 'running' || s.state === 'reloading';

/**
 * Finds out what the drop of `req` means (see the file's comment).
 *
 * @example
 * const verdict = await explainDrop({ cmd: 'reload', pid: 4208 }, dropSeams(runDir));
 * // { error: ERR_NO_MASTER 'the master (pid 4208) died during the reload; no master serves this app now (start it with `hitless start`)' }
 */
export async function explainDrop(req: DroppedRequest, seams: DropSeams): Promise<DropVerdict> {
  const what = req.cmd === 'reload' ? 'the reload' : 'the upgrade';
  const who = req.pid === undefined ? 'the master' : `the master (pid ${req.pid})`;
  // A killed process closes its sockets before it becomes a zombie: the client may see the close first.
  const dying = seams.now() + DYING_MS;
  while (req.pid !== undefined && !seams.ended(req.pid) && seams.now() < dying) await seams.wait(POLL_MS);
  if (req.pid !== undefined && !seams.ended(req.pid)) {
    return { error: new HitlessError('ERR_CONTROL_PROTOCOL', `${who} closed the control connection before answering "${req.cmd}", and still runs; see \`hitless status\``) };
  }
  const deadline = req.timeoutMs === undefined ? Infinity : seams.now() + req.timeoutMs;
  const { newPid } = req;
  let now: StatusSnapshot | undefined;
  for (;;) {
    now = undefined;
    try {
      now = await seams.status();
    } catch (err) {
      if (!isHitlessError(err, 'ERR_NO_MASTER')) {
        return { error: new HitlessError('ERR_NO_MASTER', `${who} died during ${what}; asking the control socket since: ${err instanceof Error ? err.message : String(err)}`) };
      }
    }
    // The new master takes the control socket once sure the old one is gone, and serves once its first generation is ready.
    const starting = newPid !== undefined && !seams.ended(newPid) && (now === undefined || (now.pid === newPid && now.state === 'starting'));
    if (!starting) break;
    if (seams.now() >= deadline) {
      return { error: new HitlessError('ERR_CONTROL_TIMEOUT', `the old master${req.pid === undefined ? '' : ` (pid ${req.pid})`} died during the upgrade; the new master (pid ${newPid}) was still starting its first generation at the --timeout; see \`hitless status\``) };
    }
    await seams.wait(POLL_MS);
  }
  const oldPid = req.pid ?? now?.upgradedFrom?.pid;
  const old = `the old master${oldPid === undefined ? '' : ` (pid ${oldPid})`}`;
  if (now === undefined && newPid !== undefined) {
    return { error: new HitlessError('ERR_UPGRADE_FAILED', `${old} died during the upgrade, and the new master (pid ${newPid}) ended too (its log says why): no master serves this app now (start it with \`hitless start\`)`) };
  }
  if (now === undefined) {
    return { error: new HitlessError('ERR_NO_MASTER', `${who} died during ${what}; no master serves this app now (start it with \`hitless start\`)`) };
  }
  const upgraded = req.cmd === 'upgrade' && (now.pid === newPid || (oldPid !== undefined && now.upgradedFrom?.pid === oldPid));
  if (upgraded && serving(now)) {
    const line = req.committed
      ? `${old} died after the new master (pid ${now.pid}) took over; the new master serves generation ${now.generation}`
      : `${old} died during the upgrade, before it handed the service over; the new master (pid ${now.pid}) took the control socket and serves generation ${now.generation} (the old workers' keep-alive connections were not handed over: they drain on their own)`;
    return { served: now, line };
  }
  if (upgraded) {
    return { error: new HitlessError('ERR_UPGRADE_FAILED', `${old} died during the upgrade, and the new master (pid ${now.pid}) is ${now.state} (its log says why): no master serves this app now (start it with \`hitless start\` once it is gone)`) };
  }
  const since = now.upgradedFrom ? `, upgraded from pid ${now.upgradedFrom.pid},` : '';
  return {
    error: new HitlessError(req.cmd === 'reload' ? 'ERR_RELOAD_FAILED' : 'ERR_UPGRADE_FAILED',
      `${who} died during ${what}; master pid ${now.pid}${since} answers now (${now.state}, generation ${now.generation})${req.cmd === 'reload' ? ': run `hitless reload` again if it should reload' : ''}`),
  };
}
