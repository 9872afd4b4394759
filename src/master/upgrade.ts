/**
 * A master upgrade, the old master's side (issue 22; nginx's USR2, tableflip's Upgrade):
 * start the hitless installed now beside this master, hand it every listening socket and
 * what must survive, let it bring up a generation on those sockets, readiness-gated like a
 * reload, then hand the service over and retire this master's workers with their
 * keep-alive connections moving to the new master's workers (old worker → this master →
 * new master → new worker). This master exits once its workers are gone, those of older
 * generations still draining in the background too (the `handover` phase names them; the
 * outcome counts what they cut). A SIGHUP here is held until this master's workers handed
 * their connections over, then goes on to the new master (h18 N4).
 *
 *   spawning → starting → ready → committed → handover → (upgrade-done: this master exits)
 *       (any phase before committed) → failed: the new master is stopped, this one serves on
 *
 * `committed` is the point of no return: the new master owns control.sock and the pid
 * file, systemd has its MAINPID. Before it, every failure (the new master exits, says it
 * failed, misses its deadline, or this master is asked to stop) stops the new master and
 * leaves this one exactly as it was. The OS comes in through seams (spawn, clock, notices),
 * so test/master/upgrade-unit.test.ts drives every phase on the fake host.
 */
import { formatDuration } from '../config/duration.js';
import { HitlessError, isHitlessError } from '../errors.js';
import { failedReload } from '../core/outcomes.js';
import { releaseKey } from '../core/traffic.js';
import type { Host } from '../core/host.js';
import type { Supervisor } from '../core/supervisor.js';
import type { ReleaseTraffic, ReloadOutcome, ReloadRequestCounts, UpgradeOptions, UpgradeOutcome } from '../core/types.js';
import type { MetricTotals } from '../ops/counters.js';
import type { SocketDescription } from './listeners.js';
import type { Peer, PeerLaunch } from './peer.js';
import { PeerLink } from './peer-link.js';
import { UPGRADE_PROTOCOL, type NewMasterMessage, type ScaleOverride } from './peer-protocol.js';

/** What the new master has on top of readyTimeout to report its first generation ready: Node's start, its configuration check, its control socket. */
export const UPGRADE_START_GRACE_MS = 30_000;
/** How long the new master has to take control.sock and the pid file once told. */
export const UPGRADE_COMMIT_TIMEOUT_MS = 10_000;

/** What the upgrade tells systemd (notify.ts; no-ops without NOTIFY_SOCKET). */
export interface UpgradeNotices {
  /** RELOADING=1: the service is changing (not awaited). */
  upgrading(status: string): Promise<void>;
  /** READY=1 again: the upgrade failed, this master serves on (not awaited). */
  resumed(status: string): Promise<void>;
  /** MAINPID=<pid> and READY=1, resolved once systemd has them; this master is silent from then on. */
  handedOver(pid: number, status: string): Promise<void>;
}

export interface UpgradeSeams {
  host: Pick<Host, 'now' | 'setTimer'>;
  supervisor: Pick<Supervisor, 'beginUpgrade' | 'upgradePhase' | 'endUpgrade' | 'handOff' | 'resumeState' | 'status' | 'takeHeldReloads' | 'passHeldReloads'>;
  pid: number;
  version: string;
  /** This master's Node version (`process.version`). */
  node: string;
  /** The serving generation's readyTimeout, drainTimeout and stayReady (absent: no wait), ms. */
  limits(): { readyTimeout: number; drainTimeout: number; stayReady?: number };
  /** Why this master's PID must not change (pid-guard.ts), or undefined. */
  guard(): string | undefined;
  /**
   * The new master's launch and the sockets it gets (upgrade-launch.ts); rejects with
   * ERR_UPGRADE_EXEC. Asynchronous: it may ask a child `node` (Yarn Plug'n'Play), and this
   * master serves meanwhile.
   */
  prepare(exec: string | undefined): Promise<{ launch: PeerLaunch; exec: string; sockets: SocketDescription[]; notRun?: UpgradeOutcome['notRun'] }>;
  spawn(launch: PeerLaunch): Peer;
  notices: UpgradeNotices;
  /** Stops this master's watch, fetch and metrics (the new master runs them now); their counters. */
  yieldParts(): Promise<{ metrics?: MetricTotals }>;
  /** The `hitless scale` override in force, if any. */
  scale(): ScaleOverride | undefined;
  /** After a failed upgrade: remove what the new master left (its staged control socket). */
  cleanup(pid: number | undefined): void;
  /** Runs a reload held during a failed upgrade as any reload (the configuration read again). */
  reload(reason: string): Promise<ReloadOutcome>;
}

type Base = Pick<UpgradeOutcome, 'reason' | 'startedAt' | 'from'> & { to?: UpgradeOutcome['to']; notRun?: UpgradeOutcome['notRun'] };

/**
 * Runs upgrades, one at a time (a second is refused by the supervisor: ERR_UPGRADE_BUSY).
 *
 * @example
 * const upgrader = new Upgrader(seams);
 * const outcome = await upgrader.run({ reason: 'hitless upgrade' }); // { ok: true, pid: <new master>, … }
 */
export class Upgrader {
  readonly #s: UpgradeSeams;
  #abort: ((err: Error) => void) | undefined;
  /** The upgrade under way (past its refusals), until it ended. */
  #running: Promise<unknown> | undefined;
  /** The reload request counts the new master has from this one (its state, then each hand-on). */
  #counted: ReloadRequestCounts = { started: 0, queued: 0, merged: 0, refused: 0 };

  constructor(seams: UpgradeSeams) {
    this.#s = seams;
  }

  /** This master began stopping: an upgrade before its point of no return gives up (the new master is stopped). */
  abort(): void {
    this.#abort?.(new HitlessError('ERR_UPGRADE_FAILED', 'this master began stopping during the upgrade'));
  }

  /** Resolves once no upgrade is under way (an old master exits only after telling the new one the upgrade is done). */
  get idle(): Promise<void> {
    return (this.#running ?? Promise.resolve()).then(() => undefined, () => undefined);
  }

  run(options: UpgradeOptions = {}): Promise<UpgradeOutcome> {
    const run = this.#run(options);
    if (!this.#running) {
      this.#running = run;
      void run.finally(() => (this.#running = undefined));
    }
    return run;
  }

  async #run(options: UpgradeOptions): Promise<UpgradeOutcome> {
    const s = this.#s;
    const base: Base = { reason: options.reason ?? 'hitless upgrade', startedAt: s.host.now(), from: { pid: s.pid, version: s.version, node: s.node } };
    const why = s.guard();
    if (why) return this.#refused(base, new HitlessError('ERR_UPGRADE_REFUSED', `no upgrade: ${why}`));
    try {
      s.supervisor.beginUpgrade(base.reason);
    } catch (err) {
      return this.#refused(base, err);
    }
    // A stop of this master from here on gives the upgrade up (abort), while it prepares too.
    const aborted = new Promise<never>((_resolve, reject) => (this.#abort = reject));
    aborted.catch(() => {});
    let prepared: Awaited<ReturnType<UpgradeSeams['prepare']>>;
    try {
      prepared = await Promise.race([s.prepare(options.exec), aborted]);
    } catch (err) {
      this.#abort = undefined;
      return this.#end(base, undefined, err);
    }
    base.to = { exec: prepared.exec };
    if (prepared.notRun) base.notRun = prepared.notRun;
    // Not awaited: the upgrade never waits behind a notify socket that does not read (the
    // notifier keeps the order, so MAINPID= still follows this RELOADING=1).
    void s.notices.upgrading(`upgrading: starting ${prepared.exec}`);
    s.supervisor.upgradePhase('spawning', { exec: prepared.exec });
    const peer = s.spawn(prepared.launch);
    base.to.pid = peer.pid;
    let ready: Extract<NewMasterMessage, { type: 'upgrade-ready' }>;
    try {
      s.supervisor.upgradePhase('starting', { pid: peer.pid });
      const { readyTimeout } = s.limits();
      const first = this.#wait(peer, 'upgrade-ready', readyTimeout + UPGRADE_START_GRACE_MS, 'its first generation was ready', aborted);
      const state = s.supervisor.resumeState();
      this.#counted = { refused: 0, ...state.reloadRequests };
      await peer.send({ hitless: 1, type: 'upgrade-state', protocol: UPGRADE_PROTOCOL, from: base.from, sockets: prepared.sockets, supervisor: state, scale: s.scale() });
      ready = await first;
      base.to.version = ready.version;
      // A new master of a hitless before 0.1.1 does not say its Node version.
      if (ready.node !== undefined) base.to.node = ready.node;
      // Its workers must stay ready as a reload's must: one that exits within stayReady of
      // going ready fails the upgrade here, before the point of no return, and this master
      // serves on (it passed, and the service crash-looped in the new master; h28 NEW-4).
      const stayReady = s.limits().stayReady ?? 0;
      if (stayReady > 0) await this.#stayReady(peer, ready, stayReady, aborted);
      s.supervisor.upgradePhase('ready', { pid: ready.pid, version: ready.version, generation: ready.generation });
      const committed = this.#wait(peer, 'upgrade-committed', UPGRADE_COMMIT_TIMEOUT_MS, 'it took over the control socket', aborted);
      await peer.send({ hitless: 1, type: 'upgrade-commit' });
      await committed;
    } catch (err) {
      return this.#fail(base, peer, err);
    } finally {
      this.#abort = undefined;
    }
    return this.#handOver(base, peer, ready);
  }

  /** After the point of no return: the service is the new master's; retire this one's workers into it. */
  async #handOver(base: Base, peer: Peer, ready: Extract<NewMasterMessage, { type: 'upgrade-ready' }>): Promise<UpgradeOutcome> {
    const s = this.#s;
    const pid = ready.pid;
    s.supervisor.upgradePhase('committed', { pid });
    // Past the point of no return every step goes on whatever the one before did.
    const parts = await s.yieldParts().catch((): { metrics?: MetricTotals } => ({}));
    await s.notices.handedOver(pid, `upgraded: master pid ${pid} (hitless ${ready.version}) serves generation ${ready.generation}; old master pid ${s.pid} draining`);
    const atCommit = releases(s.supervisor);
    // A SIGHUP held so far stays held: see handOff below.
    await peer.send({ hitless: 1, type: 'upgrade-takeover', releases: atCommit, metrics: parts.metrics, ...this.#handOn(pid, false) });
    // Named with their deadlines: the old master waits for them too before it exits.
    const draining = s.supervisor.status().draining ?? [];
    s.supervisor.upgradePhase('handover', { pid, ...(draining.length ? { draining } : {}) });
    const link = new PeerLink(peer, ready.workers);
    let passed = 0;
    // Once this master's workers handed their connections over, a SIGHUP here (held so far,
    // or later) goes on to the new master at once, not held until the generations draining
    // in the background are gone (h15 F5). Not before: a reload in the new master while
    // connections still move into its generation loses some (h18 N4). As a signal, which
    // any hitless the new master may be takes as a reload.
    const counts = await s.supervisor.handOff(() => link.workers.filter((w) => !w.gone), () => s.supervisor.passHeldReloads((reason) => {
      passed++;
      peer.signal('SIGHUP');
      return this.#handedOn(reason, `passed on to the new master (pid ${pid}) as a SIGHUP once the old workers' connections were handed over: it reloads now`);
    }));
    // What the old workers served since the totals went over (they report while they drain).
    await peer.send({ hitless: 1, type: 'upgrade-done', releases: since(releases(s.supervisor), atCommit), ...this.#handOn(pid) });
    const { handedOver, returned, lost, background } = counts;
    const rest = background.counts;
    const closed = counts.webSocketsClosed + rest.webSocketsClosed;
    return this.#end(base, { pid, version: ready.version, node: ready.node, generation: ready.generation }, undefined, {
      ...(passed ? { reloadsPassedOn: passed } : {}),
      forced: counts.forced + rest.forced,
      connections: { handedOver, returned, lost, drained: counts.drained + rest.drained, cut: counts.cut + rest.cut, ...(closed ? { webSocketsClosed: closed } : {}) },
      ...(background.generations.length ? {
        background: {
          generations: background.generations, forced: rest.forced, drained: rest.drained, cut: rest.cut,
          ...(rest.webSocketsClosed ? { webSocketsClosed: rest.webSocketsClosed } : {}),
        },
      } : {}),
    });
  }

  /**
   * Resolves once every worker the new master reported ready has stayed so for `ms`; rejects
   * (ERR_UPGRADE_FAILED) when one exits meanwhile, or the new master fails, exits, or this
   * master stops.
   */
  #stayReady(peer: Peer, ready: Extract<NewMasterMessage, { type: 'upgrade-ready' }>, ms: number, aborted: Promise<never>): Promise<void> {
    const who = `the new master (pid ${ready.pid})`;
    let cleanup = (): void => {};
    const waited = new Promise<void>((resolve, reject) => {
      const onMessage = (m: NewMasterMessage): void => {
        if (m.type === 'upgrade-worker-exit') {
          reject(new HitlessError('ERR_UPGRADE_FAILED', `${who}: its worker ${m.id} (pid ${m.pid}) exited within ${formatDuration(ms)} of its generation going ready (stayReady)`));
        } else if (m.type === 'upgrade-failed') {
          reject(new HitlessError('ERR_UPGRADE_FAILED', `${who} failed: ${m.error.message} (${m.error.code})`, { details: { output: m.error.output } }));
        }
      };
      const onExit = (): void => reject(new HitlessError('ERR_UPGRADE_FAILED', `${who} exited within ${formatDuration(ms)} of its first generation going ready (its output is in this master's log)`));
      const timer = this.#s.host.setTimer(() => resolve(), ms);
      peer.on('message', onMessage);
      peer.once('exit', onExit);
      if (peer.exited) onExit();
      cleanup = () => {
        timer.cancel();
        peer.off('message', onMessage);
        peer.off('exit', onExit);
      };
    });
    return Promise.race([waited, aborted]).finally(() => cleanup());
  }

  /** Waits for the new master's message of `type`; rejects (ERR_UPGRADE_FAILED) when it fails, exits, is late, or this master stops. */
  #wait<T extends NewMasterMessage['type']>(peer: Peer, type: T, ms: number, what: string, aborted: Promise<never>): Promise<Extract<NewMasterMessage, { type: T }>> {
    const who = `the new master${peer.pid ? ` (pid ${peer.pid})` : ''}`;
    let cleanup = (): void => {};
    const waited = new Promise<Extract<NewMasterMessage, { type: T }>>((resolve, reject) => {
      const onMessage = (m: NewMasterMessage): void => {
        if (m.type === type) resolve(m as Extract<NewMasterMessage, { type: T }>);
        else if (m.type === 'upgrade-failed') {
          reject(new HitlessError('ERR_UPGRADE_FAILED', `${who} failed: ${m.error.message} (${m.error.code})`, { details: { output: m.error.output } }));
        }
      };
      const onExit = (exit: { code: number | null; signal: NodeJS.Signals | null; spawnError?: Error }): void => {
        const how = exit.spawnError ? `could not be started (${exit.spawnError.message})`
          : exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
        reject(new HitlessError('ERR_UPGRADE_FAILED', `${who} ${how} before ${what} (its output is in this master's log)`));
      };
      const timer = this.#s.host.setTimer(() => reject(new HitlessError('ERR_UPGRADE_FAILED', `${who} did not say within ${formatDuration(ms)} that ${what}`)), ms);
      peer.on('message', onMessage);
      peer.once('exit', onExit);
      if (peer.exited) onExit({ code: null, signal: null });
      cleanup = () => {
        timer.cancel();
        peer.off('message', onMessage);
        peer.off('exit', onExit);
      };
    });
    return Promise.race([waited, aborted]).finally(() => cleanup());
  }

  /** Before the point of no return: stop the new master (its stop signal, SIGKILL at drainTimeout) and serve on. */
  async #fail(base: Base, peer: Peer, err: unknown): Promise<UpgradeOutcome> {
    const s = this.#s;
    s.supervisor.upgradePhase('failed', { pid: peer.pid });
    if (!peer.exited) {
      const exited = new Promise<void>((resolve) => peer.once('exit', () => resolve()));
      peer.signal('SIGTERM');
      let timer: { cancel(): void } | undefined;
      const late = new Promise<'late'>((resolve) => (timer = s.host.setTimer(() => resolve('late'), s.limits().drainTimeout)));
      if ((await Promise.race([exited, late])) === 'late') peer.signal('SIGKILL');
      timer?.cancel();
      await exited;
    }
    s.cleanup(peer.pid);
    const outcome = this.#end(base, undefined, err);
    void s.notices.resumed(`upgrade failed: ${outcome.error?.message ?? ''}; generation ${outcome.generation} serving`);
    // What was held for the new master runs here: this master serves on.
    const held = s.supervisor.takeHeldReloads();
    if (held) void s.reload(held.reasons[0] ?? 'SIGHUP').then(held.settle);
    return outcome;
  }

  /**
   * What the new master takes on from here (`upgrade-takeover`, then `upgrade-done`): the
   * reload requests held for it, and the request counts since the last hand-on (refusals
   * and merges during the upgrade). Each held request's caller hears the new master runs it.
   */
  #handOn(pid: number, withHeld = true): { reloads?: string[]; reloadRequests?: Partial<ReloadRequestCounts> } {
    const s = this.#s;
    const now = { refused: 0, ...s.supervisor.resumeState().reloadRequests };
    const delta: Partial<ReloadRequestCounts> = {};
    for (const k of ['started', 'queued', 'merged', 'refused'] as const) if (now[k] > this.#counted[k]) delta[k] = now[k] - this.#counted[k];
    this.#counted = now;
    const held = withHeld ? s.supervisor.takeHeldReloads() : undefined;
    if (held) held.settle(this.#handedOn(held.reasons[0] ?? 'SIGHUP', `handed to the new master (pid ${pid}), which runs the reload now that the old master is done`));
    return { ...(held ? { reloads: held.reasons } : {}), ...(Object.keys(delta).length ? { reloadRequests: delta } : {}) };
  }

  /** The outcome here of a reload request the new master runs: none ran here (ERR_UPGRADE_BUSY), `why` says where it went. */
  #handedOn(reason: string, why: string): ReloadOutcome {
    const at = this.#s.host.now();
    const serving = this.#s.supervisor.status().generation;
    return failedReload({ reason, startedAt: at, now: at, serving, attempted: serving, error: new HitlessError('ERR_UPGRADE_BUSY', why) });
  }

  #refused(base: Base, err: unknown): UpgradeOutcome {
    return this.#end(base, undefined, err, {}, false);
  }

  /** The outcome, reported through the supervisor (`upgrade-done`). */
  #end(
    base: Base, serving: { pid: number; version: string; node?: string | undefined; generation: number } | undefined, err: unknown,
    extra: Partial<UpgradeOutcome> = {}, began = true,
  ): UpgradeOutcome {
    const s = this.#s;
    const e = isHitlessError(err) ? err : new HitlessError('ERR_UPGRADE_FAILED', String(err), { cause: err });
    const output = Array.isArray(e.details.output) ? (e.details.output as string[]) : [];
    const outcome: UpgradeOutcome = {
      ok: serving !== undefined,
      pid: serving?.pid ?? s.pid,
      version: serving?.version ?? s.version,
      ...(serving ? (serving.node === undefined ? {} : { node: serving.node }) : { node: s.node }),
      generation: serving?.generation ?? s.supervisor.status().generation,
      ...base,
      durationMs: s.host.now() - base.startedAt,
      forced: 0,
      ...extra,
      ...(serving ? {} : { error: { code: e.code, message: e.message, output } }),
    };
    s.supervisor.endUpgrade(outcome, began);
    return outcome;
  }
}

/**
 * This master's traffic totals per release, the serving one last: the new master keeps the
 * most recent of the ones it does not serve (traffic.ts), and that is the one this master served.
 */
function releases(supervisor: Pick<Supervisor, 'status'>): ReleaseTraffic[] {
  const s = supervisor.status();
  const serving = releaseKey(s.generation, s.release);
  const all = s.traffic?.releases ?? [];
  return [...all.filter((r) => r.release !== serving), ...all.filter((r) => r.release === serving)];
}

/** `now` minus `then`, per release (what was served in between). */
function since(now: ReleaseTraffic[], then: ReleaseTraffic[]): ReleaseTraffic[] {
  return now.map((r) => {
    const t = then.find((x) => x.release === r.release);
    if (!t) return r;
    const requests = { ...r.requests };
    for (const k of Object.keys(requests) as (keyof typeof requests)[]) requests[k] = Math.max(0, requests[k] - t.requests[k]);
    return {
      release: r.release, requests,
      latency: r.latency.map((n, i) => Math.max(0, n - (t.latency[i] ?? 0))),
      latencySumMs: Math.max(0, r.latencySumMs - t.latencySumMs),
    };
  });
}
