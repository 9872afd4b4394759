/**
 * The master speaks systemd's notify protocol (sd_notify(3)) when systemd gives it a
 * NOTIFY_SOCKET (Type=notify or notify-reload): READY=1 once the first generation serves,
 * RELOADING=1 (with MONOTONIC_USEC, which Type=notify-reload wants from systemd 253 on)
 * and READY=1 around reloads, STATUS= with the generation and its workers, MAINPID= of
 * the new master before an upgraded master exits, WATCHDOG=1 every half WATCHDOG_USEC.
 * Without NOTIFY_SOCKET nothing here runs.
 *
 * How: the notify socket is a unix *datagram* socket, which Node cannot open, so each
 * message is one run of systemd's own `systemd-notify` program (VAR=VALUE arguments, sent
 * as one datagram). Two of its properties matter (systemd 252, Debian 12, checked against
 * its source): it sends with the credentials of its parent, the master, where it may (as
 * root; else its own), and it waits, unless --no-block, until systemd has processed the
 * message (BARRIER=1), so a short-lived sender is still alive when systemd attributes the
 * message to the unit's cgroup, and the master knows systemd has the new MAINPID before
 * it exits. Messages go one at a time, in order. The documented unit sets
 * NotifyAccess=all (docs/systemd.md): the new master, and a sender that is not the main
 * process, must be heard.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { MasterEvent, StatusSnapshot } from '../core/types.js';

export const NOTIFY_PROGRAM = 'systemd-notify';

/** What systemd gives the master for itself: never passed on to workers (a worker's READY=1 would be taken for the service's). */
export const SERVICE_MANAGER_VARS: readonly string[] = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'];

/** Sends one notify message (its VAR=VALUE lines); rejects with why it could not. */
export type NotifySend = (fields: string[], env: NodeJS.ProcessEnv) => Promise<void>;

/**
 * True when `program` is an executable file on `path`.
 *
 * @example
 * onPath('systemd-notify'); // true on a machine with systemd
 */
export function onPath(program: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** One run of `systemd-notify -- <fields…>`, waiting for systemd to have processed it. */
export const runSystemdNotify: NotifySend = (fields, env) => new Promise((resolve, reject) => {
  const child = spawn(NOTIFY_PROGRAM, ['--', ...fields], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.on('error', reject);
  child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(stderr.trim() || `${NOTIFY_PROGRAM} ended with ${signal ?? `code ${String(code)}`}`))));
});

/**
 * One line for STATUS=: what serves and what runs.
 *
 * @example
 * statusLine(status); // 'generation 3 serving, 2/2 workers ready'
 */
export function statusLine(s: StatusSnapshot): string {
  const workers = (n: number): string => `${n} worker${n === 1 ? '' : 's'}`;
  if (s.state === 'starting') return `starting: ${s.workers.filter((w) => w.state === 'ready').length}/${workers(s.workers.length)} ready`;
  if (s.state === 'stopping' || s.state === 'stopped') return `stopping: ${workers(s.workers.length)} draining`;
  const mine = s.workers.filter((w) => w.generation === s.generation);
  const ready = mine.filter((w) => w.state === 'ready').length;
  const failed = mine.filter((w) => w.state === 'failed').length;
  const serving = `generation ${s.generation} serving, ${ready}/${mine.length} workers ready${failed ? `, ${failed} failed` : ''}`;
  if (s.upgrade) return `upgrading: new master${s.upgrade.pid ? ` pid ${s.upgrade.pid}` : ''} ${s.upgrade.phase}; ${serving}`;
  if (s.reload) return `reloading: generation ${s.reload.generation} ${s.reload.phase}; ${serving}`;
  return serving;
}

/** Events after which the STATUS= line may have changed. */
const STATUS_EVENTS: ReadonlySet<MasterEvent['type']> = new Set([
  'worker-ready', 'worker-exit', 'slot-failed', 'reload-start', 'reload-phase', 'reload-done', 'scale-done', 'upgrade-phase', 'upgrade-done',
]);

export interface NotifierOptions {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Replaces {@link runSystemdNotify} (unit tests). */
  send?: NotifySend;
  /** CLOCK_MONOTONIC in µs (MONOTONIC_USEC); Node's hrtime is that clock on Linux. */
  monotonicUsec?: () => bigint;
}

/**
 * What the master tells systemd, in order. Muted (nothing sent) in a new master until the
 * old one handed the service over to it, and in the old one from then on.
 *
 * @example
 * const notifier = new ServiceNotifier({ env: process.env, logger });
 * notifier.ready(statusLine(supervisor.status())); // READY=1 + STATUS=…
 */
export class ServiceNotifier {
  readonly enabled: boolean;
  readonly #o: NotifierOptions;
  readonly #send: NotifySend;
  #chain: Promise<void> = Promise.resolve();
  #muted = false;
  #lastStatus: string | undefined;
  #pendingStatus: string | undefined;
  #lastError: string | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #watchdogBusy = false;
  /** Reload requests not yet answered: RELOADING=1 at the first, READY=1 after the last. */
  #reloads = 0;

  constructor(options: NotifierOptions) {
    this.#o = options;
    this.#send = options.send ?? runSystemdNotify;
    this.enabled = Boolean(options.env.NOTIFY_SOCKET);
  }

  /**
   * Follows a master's events: READY=1 (and the watchdog) once its first generation serves,
   * STATUS= whenever what it shows may have changed.
   *
   * @example
   * notifier.follow(supervisor);
   */
  follow(master: { on(event: 'event', fn: (e: MasterEvent) => void): unknown; status(): StatusSnapshot }): void {
    if (!this.enabled) return;
    master.on('event', (e) => {
      if (e.type === 'master-ready') {
        void this.ready(statusLine(master.status()));
        this.startWatchdog();
      } else if (STATUS_EVENTS.has(e.type)) this.status(statusLine(master.status()));
    });
  }

  /** Stops speaking (an old master once its successor has the service; a new one until then). */
  mute(): void {
    this.#muted = true;
    this.stopWatchdog();
  }

  /** Speaks again (a new master once it has the service). */
  unmute(): void {
    this.#muted = false;
  }

  ready(status: string): Promise<void> {
    return this.#queue(['READY=1', `STATUS=${status}`]);
  }

  reloading(status: string): Promise<void> {
    const usec = (this.#o.monotonicUsec ?? (() => process.hrtime.bigint() / 1000n))();
    return this.#queue(['RELOADING=1', `MONOTONIC_USEC=${String(usec)}`, `STATUS=${status}`]);
  }

  /**
   * The new master's PID, with READY=1, from an old master handing over: resolves once
   * systemd has processed it (or it could not be sent), and from that moment this notifier
   * is muted (in the same step, so nothing queued behind it goes out).
   */
  mainPid(pid: number, status: string): Promise<void> {
    if (!this.enabled || this.#muted) return Promise.resolve();
    this.#chain = this.#chain.then(async () => {
      if (this.#muted) return;
      await this.#deliver([`MAINPID=${pid}`, 'READY=1', `STATUS=${status}`]);
      this.mute();
    });
    return this.#chain;
  }

  /** STATUS=: skipped when unchanged; a burst sends only its last text. */
  status(text: string): void {
    if (!this.enabled || this.#muted) return;
    const queued = this.#pendingStatus !== undefined;
    this.#pendingStatus = text;
    if (queued) return;
    this.#chain = this.#chain.then(async () => {
      const next = this.#pendingStatus;
      this.#pendingStatus = undefined;
      if (next === undefined || next === this.#lastStatus || this.#muted) return;
      await this.#deliver([`STATUS=${next}`]);
    });
  }

  /** A reload request began: RELOADING=1 unless one is already under way. */
  reloadRequested(status: () => string): void {
    if (this.#reloads++ === 0) void this.reloading(status());
  }

  /** A reload request was answered: READY=1 once none is left. */
  reloadAnswered(status: () => string): void {
    if (--this.#reloads === 0) void this.ready(status());
  }

  /** WATCHDOG=1 every half WATCHDOG_USEC, when systemd asked for it (and WATCHDOG_PID, if set, is this process). */
  startWatchdog(): void {
    const usec = Number(this.#o.env.WATCHDOG_USEC);
    const pid = this.#o.env.WATCHDOG_PID;
    if (!this.enabled || this.#watchdog || !(usec > 0) || (pid !== undefined && pid !== String(process.pid))) return;
    this.#watchdog = setInterval(() => {
      // In the ordered queue like every message, so nothing of an old master follows its
      // MAINPID= of the new one; one keep-alive waiting at a time is enough.
      if (this.#watchdogBusy || this.#muted) return;
      this.#watchdogBusy = true;
      this.#chain = this.#chain.then(() => (this.#muted ? undefined : this.#deliver(['WATCHDOG=1']))).finally(() => (this.#watchdogBusy = false));
    }, Math.max(1, Math.floor(usec / 2000)));
    this.#watchdog.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** Resolves once everything queued so far was sent. */
  settled(): Promise<void> {
    return this.#chain;
  }

  #queue(fields: string[]): Promise<void> {
    if (!this.enabled || this.#muted) return Promise.resolve();
    // Muted meanwhile (an old master that sent MAINPID=): nothing more goes out.
    this.#chain = this.#chain.then(() => (this.#muted ? undefined : this.#deliver(fields)));
    return this.#chain;
  }

  async #deliver(fields: string[]): Promise<void> {
    const status = fields.find((f) => f.startsWith('STATUS='));
    try {
      await this.#send(fields, this.#o.env);
      if (status) this.#lastStatus = status.slice('STATUS='.length);
    } catch (err) {
      // Once per distinct failure: a missing program would otherwise log at every status.
      const why = err instanceof Error ? err.message : String(err);
      if (why !== this.#lastError) this.#o.logger.warn(`systemd notify failed: ${why}`, { fields: fields.map((f) => f.split('=')[0]).join(',') });
      this.#lastError = why;
    }
  }
}
