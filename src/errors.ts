/**
 * Every error hitless raises is a {@link HitlessError} with a stable `code`.
 * Codes are part of the public interface: tests assert on them and
 * docs/ERRORS.md documents each one (a test checks that the two agree).
 *
 * Add a code by adding one line to {@link codes}; keep each area's codes together.
 */
export const codes = {
  // in-app library
  ERR_INVALID_OPTION: 'An option has the wrong type or value; the message names the option and the fix.',
  ERR_LISTEN_NAME_UNKNOWN: 'listen(server, name) asked for a socket name the master did not pass (see LISTEN_FDNAMES).',
  ERR_LISTEN_FD_NOT_SOCKET: 'An inherited file descriptor is not a listening socket.',
  ERR_LISTEN_FAILED: 'The server could not listen on the inherited socket or the fallback address.',
  ERR_READY_FD: 'HITLESS_READY_FD is set but is not a writable file descriptor.',
  ERR_SHUTDOWN_HOOK_TIMEOUT: 'An onShutdown hook did not finish within its time limit.',
  // preload (unmodified apps; printed on the worker's stderr)
  ERR_LISTEN_IN_CHILD: 'A child of the worker (the app under npm start, npx or yarn) tried to listen on a socket the master holds.',
  ERR_LISTEN_PORT_NOT_HELD: 'The app listens on a port the master does not hold, and not yet on every one it holds.',
  // configuration and CLI
  ERR_CONFIG_NOT_FOUND: 'The config file named by --config does not exist.',
  ERR_CONFIG_PARSE: 'The config file is not valid JSON.',
  ERR_CONFIG_INVALID: 'A config key or flag has a bad value; the message names the key, the value and the fix.',
  ERR_USAGE: 'The command line is wrong: unknown command or flag, or a missing argument.',
  // master
  ERR_BIND: 'A listening address could not be bound (in use, not permitted, or not an address).',
  ERR_FILE_WRITE: 'A file the master was told to write (the pid file, --log-file) cannot be created where it was asked.',
  ERR_COMMAND_NOT_FOUND: 'The worker command could not be started (missing, or not executable, or its folder missing).',
  ERR_READY_TIMEOUT: 'A new worker did not announce readiness within readyTimeout.',
  ERR_LISTENER_UNSERVED: 'A new worker said which sockets it accepts on and left one of the master\'s listeners out: connections to it would wait unanswered.',
  ERR_WORKER_EXITED: 'A new worker exited before it was ready.',
  ERR_WARMUP_FAILED: 'A new worker answered a warm-up request with a 5xx, or not within readyTimeout of READY; the reload failed.',
  ERR_RELOAD_FAILED: 'A reload did not go live; the previous generation keeps serving.',
  ERR_CANARY_FAILED: 'The canary workers served worse than the serving generation (errors or latency) or died; they were retired and the previous generation keeps serving.',
  ERR_CANARY_INCONCLUSIVE: 'Fewer than canary.minRequests responses reached the canary within canary.duration (or after its warm-up); it was retired and the previous generation keeps serving.',
  ERR_START_FAILED: 'The first generation did not become ready, so the master did not start.',
  ERR_STOPPING: 'The master is stopping and refuses new work.',
  ERR_SCALE_BUSY: 'hitless scale was asked for while a reload or another scale was in progress.',
  ERR_MASTER_RUNNING: 'Another master already owns this run directory.',
  ERR_PRIVILEGE: 'The configured user/group could not be applied to workers.',
  ERR_WORKER_ACCESS: 'The worker user cannot enter the app folder or read/execute the command.',
  // master upgrades (hitless upgrade, SIGUSR2)
  ERR_UPGRADE_REFUSED: 'hitless upgrade was refused because the master\'s PID must not change here (PID 1, a container init, supervisord, a terminal, systemd without NOTIFY_SOCKET).',
  ERR_UPGRADE_BUSY: 'hitless upgrade was asked for while a reload, scale or another upgrade ran (or a reload was asked for during an upgrade).',
  ERR_UPGRADE_EXEC: 'The hitless to upgrade to (--exec, or the path the master was started from) cannot be run.',
  ERR_UPGRADE_FAILED: 'The new master did not come up (exited, its workers never got ready, timed out); it was stopped and the old master keeps serving.',
  // control socket
  ERR_NO_MASTER: 'No master answers on the control socket (not started, or started from another folder).',
  ERR_CONTROL_ACCESS: 'A master runs, but this user may not open its control socket (another user\'s master): run the command as that user or root.',
  ERR_CONTROL_PROTOCOL: 'A control message was malformed, too large, or of an unknown version.',
  ERR_CONTROL_UNKNOWN_COMMAND: 'A control message named a command the master does not know.',
  ERR_CONTROL_TIMEOUT: 'The client\'s --timeout ran out before the master answered or finished a control request (it goes on in the master).',
  // releases and upgrades
  ERR_RELEASE_SOURCE: 'The release source is missing or is neither a folder nor a .tgz/.tar.gz archive.',
  ERR_RELEASE_PREPARE: 'The release prepare command failed; the release was not switched.',
  ERR_RELEASE_UNSAFE_ARCHIVE: 'An archive entry escapes the release folder (absolute path, .., outside link, device file).',
  ERR_RELEASE_NOT_FOUND: 'The named release does not exist under releases/.',
  ERR_RELEASE_ROLLED_BACK: 'The new release did not go live and current was switched back.',
  ERR_RELEASE_BUSY: 'Another release, rollback or fetched upgrade is in progress in this app folder.',
  ERR_RELEASE_INTERRUPTED: 'hitless release got SIGINT or SIGTERM before the switch; it stopped prepare and removed the half-made release.',
  ERR_FETCH_HTTP: 'The fetcher got an HTTP error status.',
  ERR_FETCH_TIMEOUT: 'The fetcher gave up waiting for the artifact server.',
  ERR_FETCH_CHECKSUM: 'A downloaded artifact did not match its sha256.',
  ERR_FETCH_TOO_LARGE: 'A downloaded artifact exceeded maxBytes.',
  ERR_FETCH_TRUNCATED: 'A download ended before Content-Length bytes arrived.',
  // fleet deploys (hitless deploy)
  ERR_DEPLOY_PREFLIGHT: 'A host failed the deploy preflight (unreachable, no hitless, no master, busy, unhealthy); nothing was changed.',
  ERR_DEPLOY_BUSY: 'Another hitless deploy holds the local deploy lock; the message names it.',
  ERR_DEPLOY_FAILED: 'A host failed during a deploy; the deploy stopped and the hosts already done were rolled back.',
  ERR_DEPLOY_UPLOAD: 'The artifact could not be uploaded to a host, or its sha256 did not match on arrival.',
  ERR_DEPLOY_HEALTH: "A host's health URL did not answer 2xx for the whole settle time after its release.",
  ERR_DEPLOY_REMOTE: 'A remote command failed without a hitless outcome (connection lost, command killed).',
  // anything else
  ERR_FD_LIMIT: 'hitless ran out of file descriptors (EMFILE: the open-files limit, `ulimit -n`) or the system did (ENFILE); the message names the limit and how to raise it.',
  ERR_UNEXPECTED: 'An error hitless has no code for (a file system error it did not foresee, or a bug); the message is the system\'s.',
} as const;

export type HitlessErrorCode = keyof typeof codes;

export interface HitlessErrorOptions {
  cause?: unknown;
  /** Extra facts for logs and JSON output (for example a failed worker's last output lines). */
  details?: Record<string, unknown>;
}

export class HitlessError extends Error {
  override name = 'HitlessError';
  readonly code: HitlessErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: HitlessErrorCode, message: string, options: HitlessErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** True when `err` is a HitlessError, optionally with the given code. */
export function isHitlessError(err: unknown, code?: HitlessErrorCode): err is HitlessError {
  return err instanceof HitlessError && (code === undefined || err.code === code);
}

/**
 * Why `signal` was aborted, for a message: the reason's message when it is an Error, else
 * the reason itself (`hitless release` and `deploy` abort with the signal's name).
 *
 * @example
 * abortReason(AbortSignal.abort('SIGINT')); // 'SIGINT'
 */
export function abortReason(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
}

/**
 * Every problem of an invalid configuration (ERR_CONFIG_INVALID), for JSON output: its
 * `details.problems`, or its message as the one problem (a run dir, a missing command);
 * undefined for any other error. `--json` errors and refused reloads always carry them,
 * so a script reads one field whatever the count.
 *
 * @example
 * configProblems(new HitlessError('ERR_CONFIG_INVALID', '--workers: got 0; …')); // ['--workers: got 0; …']
 */
export function configProblems(err: HitlessError): string[] | undefined {
  if (err.code !== 'ERR_CONFIG_INVALID') return undefined;
  const problems = err.details.problems;
  return Array.isArray(problems) && problems.length > 0 ? problems.map(String) : [err.message];
}
