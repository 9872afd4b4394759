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
 *
 * A receiver that does not read (systemd stuck in a long daemon-reload, a stale
 * NOTIFY_SOCKET inherited by a shell, a container runtime passing one through) must not
 * hold the master: its queue fills (net.unix.max_dgram_qlen datagrams, 10 by default) and
 * systemd-notify's sendmsg then blocks with no timeout of its own. So each run is killed
 * after {@link NOTIFY_TIMEOUT_MS}, a STATUS-only line waiting behind it is replaced by the
 * next one (or by a message carrying its own STATUS=), nothing that serves (a reload, an
 * upgrade's start) waits for a delivery but an upgrade's MAINPID=, and {@link
 * ServiceNotifier.close} drops what is left when the master ends: its exit never waits.
 */
import type { Logger } from '../core/logger.js';
import type { MasterEvent, StatusSnapshot } from '../core/types.js';
import { NOTIFY_TIMEOUT_MS, runSystemdNotify, type NotifySend } from './notify-send.js';

/** What systemd gives the master for itself: never passed on to workers (a worker's READY=1 would be taken for the service's). */
export const SERVICE_MANAGER_VARS: readonly string[] = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'];

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
  /** Kill a send after this many ms; default {@link NOTIFY_TIMEOUT_MS}. */
  timeoutMs?: number;
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
  /** The STATUS-only message waiting in the queue: later texts replace its text; undefined text: superseded. */
  #pendingStatus: { text: string | undefined } | undefined;
  /** Set from a failed delivery until one gets through: only the first failure is logged. */
  #failing = false;
  /** The delivery under way, aborted by {@link close}. */
  #inFlight: AbortController | undefined;
  #closed = false;
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

  /**
   * STATUS=: skipped when unchanged; a burst sends only its last text, and a message with
   * its own STATUS= queued after it replaces it (a receiver that does not read costs one
   * kill timeout per message: STATUS lines never pile up).
   */
  status(text: string): void {
    if (!this.enabled || this.#muted) return;
    if (this.#pendingStatus) {
      this.#pendingStatus.text = text;
      return;
    }
    const job: { text: string | undefined } = { text };
    this.#pendingStatus = job;
    this.#chain = this.#chain.then(async () => {
      if (this.#pendingStatus === job) this.#pendingStatus = undefined;
      const next = job.text;
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

  /**
   * The master ends: nothing more is sent, what waits is dropped, and a `systemd-notify`
   * still running is killed (a receiver that does not read would otherwise keep the
   * stopped master alive).
   */
  close(): void {
    this.#closed = true;
    this.mute();
    this.#dropPendingStatus();
    this.#inFlight?.abort();
  }

  /** Resolves once everything queued so far was sent. */
  settled(): Promise<void> {
    return this.#chain;
  }

  #queue(fields: string[]): Promise<void> {
    if (!this.enabled || this.#muted) return Promise.resolve();
    // A STATUS-only line still waiting says less than this message's own STATUS=.
    if (fields.some((f) => f.startsWith('STATUS='))) this.#dropPendingStatus();
    // Muted meanwhile (an old master that sent MAINPID=): nothing more goes out.
    this.#chain = this.#chain.then(() => (this.#muted ? undefined : this.#deliver(fields)));
    return this.#chain;
  }

  #dropPendingStatus(): void {
    if (this.#pendingStatus) this.#pendingStatus.text = undefined;
    this.#pendingStatus = undefined;
  }

  async #deliver(fields: string[]): Promise<void> {
    if (this.#closed) return;
    const status = fields.find((f) => f.startsWith('STATUS='));
    const inFlight = (this.#inFlight = new AbortController());
    try {
      await this.#send(fields, this.#o.env, { timeoutMs: this.#o.timeoutMs ?? NOTIFY_TIMEOUT_MS, signal: inFlight.signal });
      if (status) this.#lastStatus = status.slice('STATUS='.length);
      if (this.#failing) this.#o.logger.info('systemd notify works again', { fields: names(fields) });
      this.#failing = false;
    } catch (err) {
      // Once until a message gets through: a missing program, or a receiver that does not
      // read, would otherwise log at every status and watchdog keep-alive.
      if (!this.#failing && !this.#closed) {
        const why = err instanceof Error ? err.message : String(err);
        this.#o.logger.warn(`systemd notify failed: ${why}; the master serves on without telling systemd (further failures are not logged until a message gets through)`, { fields: names(fields) });
        this.#failing = true;
      }
    } finally {
      if (this.#inFlight === inFlight) this.#inFlight = undefined;
    }
  }
}

const names = (fields: string[]): string => fields.map((f) => f.split('=')[0]).join(',');
