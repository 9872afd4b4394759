/**
 * The open-files limit (RLIMIT_NOFILE) in words: an EMFILE or ENFILE anywhere in the CLI
 * becomes ERR_FD_LIMIT naming the limit and how to raise it, and `hitless start` warns when
 * the limit is low for a server (h21 F7: `ulimit -n 96` gave "EMFILE … zod/v4/locales/km.js
 * (unexpected …)").
 *
 * Node raises its soft limit to the hard one at start-up, so the limit read here is what
 * the master has, and what its workers inherit.
 */
import { HitlessError, isHitlessError } from '../errors.js';
import { readOr } from '../core/procfs.js';

/** Below this the master warns at start: 1024 is the common soft default, and each connection takes one. */
export const LOW_FD_LIMIT = 1024;

/** What the advice suggests: enough for tens of thousands of connections, and systemd's usual hard limit or below. */
const SUGGESTED = 65536;

/**
 * The soft "Max open files" of a /proc/<pid>/limits text, or undefined when it has none or
 * it is unlimited.
 *
 * @example
 * openFilesLimit('Max open files            1024                 524288               files\n'); // 1024
 */
export function openFilesLimit(limitsText: string = readOr('/proc/self/limits')): number | undefined {
  const m = /^Max open files\s+(\d+)\s/m.exec(limitsText);
  return m ? Number(m[1]) : undefined;
}

/** How to raise the per-process limit. */
export function raiseAdvice(): string {
  return `raise it: \`ulimit -n ${SUGGESTED}\` in the shell that starts hitless (as root when it is above the hard limit, \`ulimit -Hn\`), ` +
    `or LimitNOFILE=${SUGGESTED} in the [Service] section of its systemd unit`;
}

/** The errno (EMFILE, ENFILE) behind `err`: its own code, a HitlessError's details.errno, or its causes'. */
function fdErrno(err: unknown): 'EMFILE' | 'ENFILE' | undefined {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = isHitlessError(e) ? e.details.errno : (e as { code?: unknown }).code;
    if (code === 'EMFILE' || code === 'ENFILE') return code;
  }
  return undefined;
}

/**
 * `err` as ERR_FD_LIMIT when it comes from running out of file descriptors (EMFILE: this
 * process; ENFILE: the whole system), with the limit and the fix; otherwise undefined.
 *
 * @example
 * fdLimitError(Object.assign(new Error("EMFILE: too many open files, open '/x.js'"), { code: 'EMFILE' }), 64)?.message;
 * // "too many open files (EMFILE: too many open files, open '/x.js'): this process may open at most 64 files (ulimit -n); raise it: …"
 */
export function fdLimitError(err: unknown, limit: number | undefined = openFilesLimit()): HitlessError | undefined {
  const errno = fdErrno(err);
  if (errno === undefined) return undefined;
  const what = err instanceof Error ? err.message : String(err);
  const message = errno === 'EMFILE'
    ? `too many open files (${what}): this process may open at most ${limit ?? 'a limited number of'} files (ulimit -n, RLIMIT_NOFILE); ${raiseAdvice()}`
    : `the system ran out of open files (${what}): the kernel's limit for all processes (fs.file-max) is reached; ` +
      'close what holds many files (`lsof | wc -l`), or raise it with `sysctl fs.file-max=<more>`';
  return new HitlessError('ERR_FD_LIMIT', message, { cause: err, details: { errno, ...(limit === undefined ? {} : { limit }) } });
}

/**
 * The start-up warning when the open-files limit is below {@link LOW_FD_LIMIT}, or undefined.
 *
 * @example
 * lowLimitWarning(110); // 'the open-files limit is 110 (ulimit -n): …'
 */
export function lowLimitWarning(limit: number | undefined = openFilesLimit()): string | undefined {
  if (limit === undefined || limit >= LOW_FD_LIMIT) return undefined;
  return `the open-files limit is ${limit} (ulimit -n, RLIMIT_NOFILE), which the workers inherit: every connection a worker holds takes one, ` +
    `and a worker at the limit resets new connections (EMFILE) and cannot take connections handed over at a reload; ${raiseAdvice()}`;
}
