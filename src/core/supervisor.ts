/**
 * The one owner of supervisor state (tableflip's upgrader.go): generations, workers, the
 * reload in flight and the one queued behind it, crash restarts, stop, and the one writer
 * of the master's events. Everything else (signals, the control socket, watch and fetch
 * triggers) reaches it through reload(), scale(), stop() and status(), and hears back
 * through its events.
 *
 * A reload is a ReloadRun (reload.ts) moved through its phases by a strategy
 * (strategies/) through a StrategyContext (reload-context.ts); workers start through one
 * step (slots.ts) and retire through one (retire.ts); reloads wait in queue.ts and crashed
 * slots are refilled by their generation (generation.ts); the OS comes in through a Host
 * (host.ts), so unit tests drive every phase with a fake one.
 */
import { EventEmitter } from 'node:events';
import { HitlessError, isHitlessError } from '../errors.js';
import { Generation, type RestartSeams } from './generation.js';
import { DrainingGenerations, held, type DrainRest } from './draining.js';
import { ConnectionSplit, SPLIT_END_LIMIT_MS, SPLIT_WITHIN_MS } from './split.js';
import { HandoverRoutes, type Receiver } from './handover.js';
import { webSocketReceiver, WebSocketRoutes } from './ws-handover.js';
import { busyScale, failedReload, outcomeError, refusedScale, stoppingReload } from './outcomes.js';
import { StrategyContext, type DiedLive, type ReloadSeams } from './reload-context.js';
import { ReloadQueue } from './queue.js';
import { ReloadFollowers } from './follow.js';
import { BootPriorityControl } from './priority.js';
import { ReloadRun } from './reload.js';
import { connectionCounts, drain, Retirement, zeroRetireCounts, type RetireCounts } from './retire.js';
import { slotRange, startSlots } from './slots.js';
import { listenerWarnings } from './listening.js';
import type { GenerationSpec } from './spec.js';
import { STRATEGIES } from './strategies/index.js';
import { countsOf, releaseKey, TrafficBook } from './traffic.js';
import { warmUp, type Warmer, type WarmupEvent } from './warmup.js';
import { Worker } from './worker.js';
import type { Host, Timer } from './host.js';
import type { ConfigChange, StrategyName } from '../config/types.js';
import { workerCount } from '../config/workers.js';
import { formatDuration } from '../config/duration.js';
import type {
  ConnectionCounts, ListenerStatus, MasterEvent, ReportedReloadRequestCounts, MasterHandle, ReleaseTraffic, ReloadConfigDiff, ReloadOptions, ReloadOutcome, ReloadRequestCounts, ScaleOutcome, StatusSnapshot, UpgradeOutcome, UpgradePhase, WorkerStatus,
} from './types.js';

export interface SupervisorOptions {
  host: Host;
  /** The spec of the next generation, read when it is created (a reload may bring its own). */
  spec: () => GenerationSpec;
  version: string;
  listeners: () => ListenerStatus[];
  /** Problems with the held sockets the master finds when asked (a unix socket file removed: src/master/socket-files.ts), for status and reload outcomes. */
  checks?: () => string[];
  /** Per-pid resident memory and CPU for status (optional: /proc on Linux). */
  usage?: (pids: number[]) => Map<number, { rssBytes?: number; cpuPercent?: number }>;
  /** How long the master process has been running, ms (`master-ready` reports it; default: since the supervisor was created). */
  uptime?: () => number;
  /** Sends a reload's new workers their warm-up requests (src/master/warmup.ts); absent: no warm-up. */
  warmer?: Warmer;
  /** Connections an old worker may have in transit at once (default HANDOVER_WINDOW; for measurements). */
  handoverWindow?: number;
  /** How much a hand-over is spread (default HANDOVER_SPREAD, 0: full speed; for measurements). */
  handoverSpread?: number;
  /** False: the pace ignores how many connections a sender has left, and the receivers take them round robin (for measurements; default true). */
  handoverPaceLeft?: boolean;
  /** False: a hand-over's receivers take its connections round robin, not in turn (for measurements; default true). */
  handoverFill?: boolean;
  /** False: a starved canary is lent nothing more (strategies/canary.ts); for measurements only. */
  canaryLend?: boolean;
  /** False: a booting worker is lowered only after its fork (for measurements; default true: forked at its boot priority). */
  forkAtBootNice?: boolean;
  /** What an older master handed on when this one took over by an upgrade (src/master/successor.ts). */
  resume?: SupervisorResume;
  /**
   * How long every new worker must have been ready before a reload is done, ms, over the new
   * generation's spec (config `stayReady`): unit tests that are not about it give 0, so a
   * reload ends without the fake clock moving. Default: the spec's.
   */
  stayReady?: number;
}

/**
 * What survives a master upgrade (src/master/upgrade.ts): the generation counter, the
 * reload counters and the last reload, so the new master goes on where the old one was.
 */
export interface SupervisorResume {
  /** The number the next generation gets. */
  nextGeneration: number;
  reloadRequests: ReportedReloadRequestCounts;
  lastReload: ReloadOutcome | undefined;
  /** The master taken over from, and when. */
  upgradedFrom?: { pid: number; version: string; node?: string; at: number };
}

/** Reload requests held while this master upgraded itself (see Supervisor.takeHeldReloads), taken out to run. */
export interface HeldReloads {
  /** Every request held, the first included (a SIGHUP each). */
  reasons: string[];
  /** Gives every held request's caller its outcome. */
  settle(outcome: ReloadOutcome): void;
}

export type SupervisorState = StatusSnapshot['state'];

/** reload()'s options; `spec` replaces the supervisor's spec source for this reload. */
export interface SupervisorReloadOptions extends ReloadOptions {
  spec?: () => GenerationSpec;
  /**
   * What the reload changes, against what serves when it begins: called then, not when it
   * is asked for (a queued reload follows one that may already have applied the same
   * edits, report h12 N3), announced (`reload-config`: the log and every request following
   * it) and put on its outcome (`changes`, `notes`). Given with `spec`; the last one wins
   * when requests merge.
   */
  config?: () => ReloadConfigDiff;
}

/** A reload or scale asked for while a master upgrade runs. */
const upgradeBusy = (pid: number | undefined): HitlessError => new HitlessError('ERR_UPGRADE_BUSY',
  `a master upgrade is under way${pid ? ` (new master pid ${pid})` : ''}; ask again once \`hitless upgrade\` is done (the new master takes it then)`);

/** The longest delay a timer takes (setTimeout fires at once past 2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long a crash replacement stays up after READY before it gets its share of the
 * kept-alive connections (#settle). A worker that crashes again soon after it boots (a bad
 * value read lazily, a dependency down: a crash loop in the making) would reset every
 * connection moved to it, where its peers' clients lose nothing by staying put a few
 * seconds longer (report h12 N2).
 */
export const RESTART_SETTLE_MS = 5_000;

/**
 * A held socket found not listening (listenerStopped): `found` is the newest generation then
 * (the one being started by a reload, else the serving one), with the socket's address and
 * the line that says it.
 */
interface SocketAlert {
  found: number;
  address: string;
  text: string;
}

export class Supervisor extends EventEmitter implements MasterHandle {
  readonly #opts: SupervisorOptions;
  readonly #host: Host;
  readonly #startedAt: number;
  #state: SupervisorState = 'starting';
  #current: Generation | undefined;
  /** The newest generation created (the one being started before any serves). */
  #latest: Generation | undefined;
  #nextId = 1;
  /** Every worker process still alive, whatever its generation or state. */
  readonly #alive = new Set<Worker>();
  #reload: { run: ReloadRun; done: Promise<ReloadOutcome> } | undefined;
  /** The requests following the reload in flight (follow.ts): they see its events only. */
  #follow: ReloadFollowers | undefined;
  /** A scale is running: reloads queue behind it. */
  #scaling = false;
  /** Workers a scale-up started that are not ready yet: a crash fails the scale, no restart. */
  readonly #joining = new Set<Worker>();
  /** Crash replacements that are READY, stayed up (#settle) and wait for their share of the kept-alive connections (#rebalanceRestarted). */
  readonly #restarted = new Set<Worker>();
  /** Crash replacements are taking their share of the connections: reloads, scales and upgrades wait for it. */
  #rebalancing = false;
  /** The reload waiting behind the one in flight (queue.ts), and what became of each request. */
  readonly #queue: ReloadQueue;
  #lastReload: ReloadOutcome | undefined;
  #stopping: Promise<void> | undefined;
  /** True once a stop was forced (workers SIGKILLed), by the first stop call or a later one. */
  #forcedStop = false;
  /** Rejects every pending ready() wait when a stop begins. */
  #stopGate: { promise: Promise<never>; reject: (e: Error) => void };
  /** Retirements under way, the reload's own and those draining in the background. */
  readonly #draining = new DrainingGenerations();
  /** Where the connections each worker sends go (a retiring worker's: to the next generation). */
  readonly #routes = new HandoverRoutes();
  /** Where the WebSockets each worker sends go (hitless/ws). */
  readonly #wsRoutes = new WebSocketRoutes();
  /** What workers reported on the channel (stats messages). */
  readonly #traffic = new TrafficBook();
  readonly #trafficIds = new WeakMap<Worker, string>();
  /** A generation a rollback replaced, and the one that replaced it (#rollBack): where its predecessor's connections go. */
  readonly #replacedBy = new WeakMap<Generation, Generation>();
  /** The generation a rollback is replacing, while it runs (#rollBack): its crashed slots wait. */
  #rollingBack: Generation | undefined;
  /** Lowers booting workers and restores them at READY (until a restore fails). */
  readonly #priority: BootPriorityControl;
  /** Lowered workers whose priority comes back after their warm-up, not at READY. */
  readonly #lowUntilWarm = new WeakSet<Worker>();
  /** Workers at their boot priority now, each with the timer that gives it back if the boot starves. */
  readonly #low = new WeakMap<Worker, Timer>();
  #nextTrafficId = 1;
  /** The master upgrade running (this master is the old one): reloads and scales are refused meanwhile. */
  #upgrade: NonNullable<StatusSnapshot['upgrade']> | undefined;
  #lastUpgrade: UpgradeOutcome | undefined;
  /** Reload requests held until the upgrade ends (`holdDuringUpgrade`: a SIGHUP has nobody to tell to ask again). */
  #held: { reasons: string[]; since: number; promise: Promise<ReloadOutcome>; settle: (o: ReloadOutcome) => void } | undefined;
  /** Set once the new master took over: a request to hold goes to it at once (see passHeldReloads). */
  #passOn: ((reason: string) => ReloadOutcome) | undefined;
  readonly #upgradedFrom: SupervisorResume['upgradedFrom'];
  /** Held sockets found not listening (listenerStopped), by listener name. */
  readonly #socketAlerts = new Map<string, SocketAlert>();
  #resolveStopped: () => void = () => {};
  /** Resolves once a stop (graceful or forced) has finished and no worker is left. */
  readonly stopped = new Promise<void>((resolve) => (this.#resolveStopped = resolve));

  constructor(opts: SupervisorOptions) {
    super();
    this.#opts = opts;
    this.#host = opts.host;
    this.#priority = new BootPriorityControl(opts.host);
    this.#startedAt = opts.host.now();
    let reject: (e: Error) => void = () => {};
    const promise = new Promise<never>((_r, rej) => (reject = rej));
    promise.catch(() => {});
    this.#stopGate = { promise, reject };
    const resume = opts.resume;
    this.#upgradedFrom = resume?.upgradedFrom;
    this.#queue = new ReloadQueue(() => this.#host.now(), resume?.reloadRequests);
    if (resume) {
      this.#nextId = resume.nextGeneration;
      this.#lastReload = resume.lastReload;
    }
  }

  get state(): SupervisorState {
    return this.#state;
  }

  /** The serving generation. */
  get current(): Generation | undefined {
    return this.#current;
  }

  /**
   * Starts generation 1 and resolves when all its workers are ready (`master-start`, then
   * `master-ready`); throws ERR_START_FAILED.
   */
  async start(): Promise<void> {
    const from = this.#upgradedFrom;
    this.#emit({ type: 'master-start', pid: process.pid, listeners: this.#opts.listeners(), ...(from ? { upgradedFrom: { pid: from.pid, version: from.version } } : {}) });
    let gen: Generation;
    let starting: Generation | undefined;
    try {
      // Inside: a spec that cannot be made (the workers' folder missing, a worker user that
      // cannot reach the app) fails the start like a worker would, ERR_START_FAILED with its reason.
      gen = starting = this.#newGeneration(this.#opts.spec());
      await startSlots(slotRange(0, gen.size), {
        spawn: (slot) => this.#spawn(gen, slot, 0),
        ready: (w) => this.#gate(w.waitReady(gen.spec.readyTimeout)),
        host: this.#host,
      });
    } catch (failure) {
      // The workers startSlots sent away (their stop signal, SIGKILL after a grace) may have
      // served already: they answer what they accepted before the master goes on to stop
      // (which would SIGKILL them at once).
      if (starting !== undefined) await Promise.all(starting.live().map((w) => w.exited));
      const { message, output } = outcomeError(failure);
      // A stop asked for while generation 1 started (Ctrl-C, SIGTERM): say that, not a failure of its own.
      const why = isHitlessError(failure, 'ERR_STOPPING') ? 'the master was asked to stop before its workers were ready' : isHitlessError(failure) ? message : String(failure);
      throw new HitlessError('ERR_START_FAILED', `the first generation did not start: ${why}`, {
        cause: failure,
        details: { output },
      });
    }
    this.#current = gen;
    for (const text of this.#socketWarnings(gen)) this.#emit({ type: 'warning', generation: gen.id, text });
    if (this.#state === 'starting') this.#state = 'running';
    this.#emit({ type: 'master-ready', generation: gen.id, ms: this.#opts.uptime?.() ?? this.#host.now() - this.#startedAt });
    // A reload asked for while the first generation was starting waited in the queue.
    this.#pump();
  }

  /**
   * Reloads: a new generation from `spec` (default: the supervisor's spec source) with
   * `strategy` (default: the spec's). One reload at a time; a request during one is
   * queued, and further ones join the queued one (their outcome says `coalesced`; the last
   * spec or strategy given wins). During a master upgrade a request is refused
   * (ERR_UPGRADE_BUSY), or with `holdDuringUpgrade` held until the new master takes it
   * (after its takeover: passed on at once, see passHeldReloads).
   */
  reload(reason: string, options: SupervisorReloadOptions = {}): Promise<ReloadOutcome> {
    const { spec, strategy, follow, config } = options;
    // Before the stopping check: an upgrade's hand-over stops this supervisor, and what is held then goes to the new master.
    if (this.#upgrade && options.holdDuringUpgrade) return this.#passOn ? Promise.resolve(this.#passOn(reason)) : this.#hold(reason);
    if (this.#stopping || this.#state === 'stopped') {
      this.#queue.refused();
      this.#emit({ type: 'reload-refused', reason, code: 'ERR_STOPPING' });
      return Promise.resolve(this.#refused(reason));
    }
    if (this.#upgrade) {
      this.#queue.refused();
      this.#emit({ type: 'reload-refused', reason, code: 'ERR_UPGRADE_BUSY' });
      const serving = this.#current?.id ?? 0;
      const now = this.#host.now();
      return Promise.resolve(failedReload({ reason, startedAt: now, now, serving, attempted: serving, error: upgradeBusy(this.#upgrade.pid) }));
    }
    if (!this.#queue.pending && !this.#reload && !this.#scaling && !this.#rebalancing && this.#state === 'running') {
      this.#queue.started();
      const followers = new ReloadFollowers();
      followers.add(follow);
      return this.#begin(reason, spec, strategy, followers, config);
    }
    const { promise, merged } = this.#queue.add(reason, spec, strategy, follow, config);
    const queued: MasterEvent = { type: 'reload-queued', reason, merged, ...this.#behind() };
    this.#emit(queued);
    follow?.(queued);
    return promise;
  }

  /**
   * Holds a request until the upgrade ends; the ones after the first join it (`merged`). The
   * first is counted by the master that runs it (the new one, or this one after a failure).
   */
  #hold(reason: string): Promise<ReloadOutcome> {
    const held = this.#held;
    const upgrade = { behind: 'upgrade' as const, ...(this.#upgrade?.pid ? { pid: this.#upgrade.pid } : {}) };
    if (held) {
      held.reasons.push(reason);
      this.#queue.merged();
      this.#emit({ type: 'reload-queued', reason, merged: true, ...upgrade });
      return held.promise.then((o) => ({ ...o, coalesced: true }));
    }
    let settle: (o: ReloadOutcome) => void = () => {};
    const promise = new Promise<ReloadOutcome>((r) => (settle = r));
    this.#held = { reasons: [reason], since: this.#host.now(), promise, settle };
    this.#emit({ type: 'reload-queued', reason, merged: false, ...upgrade });
    return promise;
  }

  /**
   * Takes out the reload requests held during the upgrade, to run: the new master runs them
   * once it took over (upgrade.ts hands them on), this master once the upgrade failed.
   *
   * @example
   * const held = supervisor.takeHeldReloads(); // { reasons: ['SIGHUP', 'SIGHUP'], settle }
   */
  takeHeldReloads(): HeldReloads | undefined {
    const held = this.#held;
    this.#held = undefined;
    return held && { reasons: held.reasons, settle: held.settle };
  }

  /**
   * From now on a request that would be held during the upgrade goes to `pass` at once, its
   * outcome what `pass` says, and those held so far go to it now (one call for them all):
   * the new master runs reloads itself, so a SIGHUP to this master is not held until the
   * generations draining in the background are gone (h15 F5: up to their drainTimeout).
   * Called once this master's own workers handed their connections over (see handOff's
   * `handedOver`), not at the takeover: a reload in the new master while they still move
   * loses some (h18 N4). Until the upgrade ends.
   *
   * @example
   * supervisor.passHeldReloads((reason) => { peer.signal('SIGHUP'); return handedOn(reason); });
   */
  passHeldReloads(pass: (reason: string) => ReloadOutcome): void {
    if (!this.#upgrade) return;
    this.#passOn = pass;
    // Those held until now go the same way, once for all of them (the others joined the first).
    const held = this.takeHeldReloads();
    if (held) held.settle(pass(held.reasons[0] ?? 'SIGHUP'));
  }

  /** What a queued reload waits for: the reload in flight, a scale, a crash replacement's rebalance, or the first generation's start. */
  #behind(): { behind: 'reload' | 'scale' | 'rebalance' | 'start'; generation?: number } {
    if (this.#reload) return { behind: 'reload', generation: this.#reload.run.generation };
    return this.#scaling ? { behind: 'scale' } : this.#rebalancing ? { behind: 'rebalance' } : { behind: 'start' };
  }

  /**
   * Changes the serving generation's worker count without a reload: starts the missing
   * slots and waits until they are READY (a new worker that fails before READY fails the
   * scale: they are stopped and the count stays), or drains the slots above `workers`.
   * Refused (ERR_SCALE_BUSY) while a reload runs or is queued; a reload asked for during a
   * scale waits for it.
   */
  async scale(workers: number): Promise<ScaleOutcome> {
    const gen = this.#current;
    const startedAt = this.#host.now();
    const from = gen?.size ?? 0;
    const refuse = (error: unknown): ScaleOutcome => refusedScale(gen?.id ?? 0, from, startedAt, this.#host.now(), error);
    if (this.#stopping || !gen) return refuse(new HitlessError('ERR_STOPPING', 'the master is stopping; no scale'));
    try {
      workerCount(workers, 'scale');
    } catch (err) {
      return refuse(err);
    }
    if (this.#upgrade) return refuse(upgradeBusy(this.#upgrade.pid));
    if (this.#reload || this.#queue.pending || this.#scaling || this.#rebalancing || this.#state !== 'running') return busyScale(gen.id, from, startedAt);
    this.#scaling = true;
    this.#emit({ type: 'scale-start', generation: gen.id, from, to: workers });
    let outcome: ScaleOutcome;
    try {
      let forced = 0;
      let connections: ScaleOutcome['connections'];
      if (workers > from) {
        gen.resize(workers);
        // Joining workers are not restarted when they crash: the scale fails instead.
        const joining: Worker[] = [];
        try {
          await startSlots(slotRange(from, workers), {
            spawn: (slot) => {
              const w = this.#spawn(gen, slot, 0);
              joining.push(w);
              this.#joining.add(w);
              return w;
            },
            ready: (w) => this.#gate(w.waitReady(gen.spec.readyTimeout)),
            host: this.#host,
          }, gen.spec.bootConcurrency);
        } catch (err) {
          gen.resize(from);
          throw err;
        } finally {
          for (const w of joining) this.#joining.delete(w);
        }
        connections = await this.#rebalance(gen, joining, (workers - from) / workers);
      } else if (workers < from) {
        // The workers that stay take the removed ones' keep-alive connections, as a reload's
        // new generation would (unless `handover` is off): no connection is closed, and the
        // removed workers skip their shutdownDelay (the socket stays served). Round robin:
        // the receivers are warm, filling them in turn is for a new generation's first seconds.
        const counts = await this.#retire(gen.resize(workers), gen, undefined, { fill: false });
        forced = counts.forced;
        if (counts.handedOver + counts.returned + counts.lost + counts.drained + counts.cut > 0 || counts.webSockets) connections = connectionCounts(counts);
      }
      gen.spec = { ...gen.spec, workers, config: { ...gen.spec.config, workers } };
      outcome = { ok: true, generation: gen.id, from, to: workers, startedAt, durationMs: this.#host.now() - startedAt, forced, ...(connections ? { connections } : {}) };
    } catch (err) {
      outcome = refuse(err);
    } finally {
      this.#scaling = false;
    }
    this.#emit({ type: 'scale-done', outcome });
    if (!this.#reload) this.#pump();
    this.#rebalanceRestarted();
    return outcome;
  }

  /**
   * A scale-up's joining workers are ready: the workers that were serving hand them `share`
   * of their kept-alive connections (split.ts), so clients that keep their connections (a
   * proxy's pool, browsers) reach the new workers too, not only clients that connect anew.
   * Resolves once every sender has moved its part (or kept what stayed busy); undefined when
   * nothing could move (`handover` off, or workers that do not speak the channel).
   */
  async #rebalance(gen: Generation, joining: Worker[], share: number, restarted = false): Promise<ConnectionCounts | undefined> {
    const senders = gen.live().filter((w) => !joining.includes(w) && w.state === 'ready' && w.hello?.moves === true);
    const receivers = (): Worker[] => joining.filter((w) => w.acceptsConnections);
    if (!gen.spec.handover || senders.length === 0 || receivers().length === 0) return undefined;
    this.#emit({
      type: 'scale-rebalance', generation: gen.id, senders: senders.length, receivers: receivers().length, share,
      ...(restarted ? { restarted: receivers().map((w) => w.slot) } : {}),
    });
    const split = new ConnectionSplit({ senders, receivers, ask: { share }, within: SPLIT_WITHIN_MS, routes: this.#routes, host: this.#host });
    split.start();
    // A sender ends its move by itself within SPLIT_WITHIN_MS (what stayed busy stays); one
    // that says nothing (its event loop stuck) does not hold the scale: end() tells it.
    let timer: Timer | undefined;
    await Promise.race([split.finished(), new Promise<void>((resolve) => (timer = this.#host.setTimer(resolve, SPLIT_WITHIN_MS + SPLIT_END_LIMIT_MS)))]);
    timer?.cancel();
    const { handedOver, returned, lost } = await split.end();
    return handedOver + returned + lost > 0 ? { handedOver, returned, lost, drained: 0, cut: 0 } : undefined;
  }

  /**
   * A crash replacement is READY: it takes its share of the kept-alive connections
   * (#rebalanceRestarted) once it has stayed up RESTART_SETTLE_MS, and, when its slot
   * crashed more than once within `restart.window`, not before those earlier crashes left
   * the window (Generation.calmAt): each restart of a crash-looping slot would otherwise be
   * handed connections that its next crash resets. It gets new connections meanwhile, as
   * any worker. Dropped when it exits first.
   */
  #settle(gen: Generation, w: Worker): void {
    const now = this.#host.now();
    const at = Math.max(now + RESTART_SETTLE_MS, gen.calmAt(w.slot));
    const timer = this.#host.setTimer(() => {
      w.off('exit', drop);
      this.#restarted.add(w);
      this.#rebalanceRestarted();
    }, Math.min(MAX_TIMER_MS, at - now));
    const drop = (): void => timer.cancel();
    w.once('exit', drop);
  }

  /**
   * Crash replacements that got READY while their generation serves take their share of
   * the serving workers' kept-alive connections, as a scale-up's workers do (#rebalance):
   * the crashed worker's clients reconnected while the replacement booted, so they all
   * went to the workers that survived, and keep-alive pools open no new connections after
   * that. One rebalance at a time, never beside a reload, scale or upgrade (they move
   * connections too): a replacement that gets ready meanwhile waits for it to end, and
   * one that is no longer its generation's serving worker by then is left out (a reload
   * that went live took every connection to the new generation anyway).
   */
  #rebalanceRestarted(): void {
    const gen = this.#current;
    for (const w of this.#restarted) if (w.state !== 'ready' || gen?.workers[w.slot] !== w) this.#restarted.delete(w);
    if (!gen || this.#restarted.size === 0 || this.#rebalancing || this.#reload || this.#queue.pending || this.#scaling || this.#upgrade || this.#state !== 'running') return;
    const joining = [...this.#restarted];
    this.#restarted.clear();
    this.#rebalancing = true;
    const startedAt = this.#host.now();
    const slots = joining.map((w) => w.slot);
    void this.#rebalance(gen, joining, joining.length / gen.size, true).then(
      (moved) => {
        // Nothing was asked (handover off, workers without the channel): nothing to report.
        if (moved) this.#emit({ type: 'restart-rebalanced', generation: gen.id, slots, ms: this.#host.now() - startedAt, ...moved });
      },
      (err: unknown) => this.#emit({ type: 'warning', generation: gen.id, text: `the restarted worker${slots.length === 1 ? '' : 's'} ${slots.map((s) => `${gen.id}.${s}`).join(', ')} got no kept-alive connections: ${String(err)}` }),
    ).finally(() => {
      this.#rebalancing = false;
      if (!this.#reload) this.#pump();
      this.#rebalanceRestarted();
    });
  }

  /** The host's clock (ms): what outcomes are timed on. */
  now(): number {
    return this.#host.now();
  }

  /**
   * Announces the configuration a reload is about to run (`reload-config`): the
   * reconfigure layer's diff against what serves, before it asks for the reload.
   */
  announceConfig(reason: string, changes: ConfigChange[], notes: string[]): void {
    this.#emit({ type: 'reload-config', reason, changes, notes });
  }

  /**
   * Records a reload refused before it could start (by the reconfigure layer: a file that
   * does not validate, an address that cannot be bound): it is the last reload in status
   * until a later one, and a `reload-done` event. Returns its outcome.
   */
  refuseReload(reason: string, startedAt: number, error: unknown, extra: Pick<ReloadOutcome, 'changes' | 'notes'> = {}): ReloadOutcome {
    const serving = this.#current?.id ?? 0;
    const outcome: ReloadOutcome = { ...failedReload({ reason, startedAt, now: this.#host.now(), serving, attempted: serving, error }), ...extra };
    this.#queue.refused();
    this.#record(outcome);
    this.#emit({ type: 'reload-done', outcome });
    return outcome;
  }

  /** Reports workers still starting (`ready-wait`, from src/master/ready-wait.ts, which watches the events). */
  readyWaiting(e: Extract<MasterEvent, { type: 'ready-wait' }>): void {
    this.#emit(e);
  }

  /**
   * Reports a held socket found not listening (src/master/listener-watch.ts): logged, and
   * kept as a warning in the outcome of the reload during which it was found, and in status
   * until a generation that a later reload made serve serves that listener again (or the
   * listener is no longer held): the socket listens again at once, so what is left to say is
   * which workers did it, and a later generation that still does it is found again when its
   * workers exit. The latest per socket is kept.
   */
  listenerStopped(e: Omit<Extract<MasterEvent, { type: 'listener-stopped' }>, 'type'>): void {
    const found = this.#reload?.run.generation ?? this.#current?.id ?? 0;
    this.#socketAlerts.set(e.listener, { found, address: e.address, text: e.text });
    this.#emit({ type: 'listener-stopped', ...e });
  }

  /** Reports the parts of the master restarted with new settings after a reload went live (`reconfigured`). */
  reconfigured(parts: string[], errors: string[]): void {
    this.#emit({ type: 'reconfigured', parts, errors });
  }

  stop(force = false): Promise<void> {
    if (this.#stopping) {
      if (force) {
        this.#forcedStop = true;
        for (const w of this.#alive) w.kill();
      }
      return this.#stopping;
    }
    this.#forcedStop = force;
    this.#state = 'stopping';
    // Every wait of a start, scale or reload ends with this: a neutral message (it is not always a reload).
    this.#stopGate.reject(new HitlessError('ERR_STOPPING', 'the master began stopping'));
    this.#current?.cancelRestarts();
    const queued = this.#queue.take();
    queued?.resolve(this.#refused(queued.reason));
    const held = this.takeHeldReloads();
    held?.settle(this.#refused(held.reasons[0] ?? ''));
    this.#stopping = (async () => {
      const workers = [...this.#alive];
      for (const w of workers) (force ? w.kill() : w.stop());
      // Killed at drainTimeout: their in-flight requests were cut, which the stop says (master-stop `forced`).
      let forced = (await drain(workers, this.#drainTimeout(), this.#host)).length;
      // A reload in flight gives up at its next step (the stop gate); then drain stragglers.
      await this.#reload?.done;
      const stragglers = [...this.#alive];
      for (const w of stragglers) (force ? w.kill() : w.stop());
      forced += (await drain(stragglers, this.#drainTimeout(), this.#host)).length;
      // Old generations draining in the background were among them: report their end.
      await this.#draining.settled();
      this.#state = 'stopped';
      // Forced by this call or a later one (a second SIGTERM during a graceful stop).
      this.#emit({ type: 'master-stop', reason: this.#forcedStop ? 'forced' : 'graceful', ...(forced > 0 ? { forced } : {}) });
      this.#resolveStopped();
    })();
    return this.#stopping;
  }

  status(): StatusSnapshot {
    const now = this.#host.now();
    const workers: WorkerStatus[] = [...this.#alive].map((w) => {
      const snap = w.snapshot();
      const traffic = this.#traffic.worker(this.#trafficId(w), now);
      return traffic ? { ...snap, traffic } : snap;
    });
    const usage = this.#opts.usage?.(workers.flatMap((w) => (w.pid === undefined ? [] : [w.pid])));
    for (const w of workers) Object.assign(w, w.pid === undefined ? {} : usage?.get(w.pid));
    for (const failed of this.#current?.failed.values() ?? []) workers.push(failed);
    for (const waiting of this.#current?.restarting.values() ?? []) workers.push({ ...waiting });
    workers.sort((a, b) => a.generation - b.generation || a.slot - b.slot);
    const { rss, heapUsed } = process.memoryUsage();
    const run = this.#reload?.run;
    const held = new Set(this.#opts.listeners().map((l) => `${l.name} ${l.address}`));
    const warnings = this.#current ? this.#warnings(this.#current, held) : [];
    return {
      version: this.#opts.version,
      node: process.version,
      pid: process.pid,
      startedAt: this.#startedAt,
      uptimeMs: this.#host.now() - this.#startedAt,
      state: this.#state,
      generation: this.#current?.id ?? 0,
      release: this.#current?.release,
      listeners: this.#opts.listeners(),
      workers,
      lastReload: this.#lastReload,
      reloadQueued: this.#queue.pending || this.#held !== undefined,
      ...(this.#queue.pending ? { queuedReload: this.#queue.snapshot() } : {}),
      ...(this.#held ? { queuedReload: { reasons: [...this.#held.reasons], since: this.#held.since } } : {}),
      reloadRequests: { ...this.#queue.requests },
      reload: run && { generation: run.generation, phase: run.phase, reason: run.reason, startedAt: run.startedAt },
      draining: this.#draining.snapshot(),
      memory: { rssBytes: rss, heapUsedBytes: heapUsed },
      ...(warnings.length ? { warnings } : {}),
      traffic: this.#traffic.snapshot([...this.#alive], this.#current, now),
      upgrade: this.#upgrade && { ...this.#upgrade },
      lastUpgrade: this.#lastUpgrade,
      upgradedFrom: this.#upgradedFrom,
    };
  }

  // ── master upgrades (src/master/upgrade.ts runs them; the supervisor keeps their state) ──

  /**
   * Marks a master upgrade as begun, refusing reloads and scales until it ends; throws
   * ERR_UPGRADE_BUSY (with why) while a reload, scale, start, stop or another upgrade runs.
   *
   * @example
   * supervisor.beginUpgrade('hitless upgrade'); // then upgradePhase(), and handOff() or endUpgrade()
   */
  beginUpgrade(reason: string): void {
    const busy = this.#upgrade ? `another upgrade is under way (new master pid ${this.#upgrade.pid ?? '?'})`
      : this.#stopping || this.#state === 'stopped' ? 'the master is stopping'
      : this.#reload ? `a reload is under way (generation ${this.#reload.run.generation})`
      : this.#queue.pending ? 'a reload is queued'
      : this.#scaling ? 'a scale is under way'
      : this.#rebalancing ? 'restarted workers are taking their share of the kept-alive connections'
      : this.#state !== 'running' || !this.#current ? 'the first generation is still starting' : undefined;
    if (busy) throw new HitlessError('ERR_UPGRADE_BUSY', `no upgrade: ${busy}; run \`hitless upgrade\` again once it is done`);
    this.#upgrade = { phase: 'spawning', reason, pid: undefined, startedAt: this.#host.now() };
  }

  /** The upgrade moved on (an `upgrade-phase` event; status shows it). */
  upgradePhase(phase: UpgradePhase, fields: Omit<Extract<MasterEvent, { type: 'upgrade-phase' }>, 'type' | 'phase' | 'reason'> = {}): void {
    if (!this.#upgrade) return;
    this.#upgrade.phase = phase;
    if (fields.pid !== undefined) this.#upgrade.pid = fields.pid;
    this.#emit({ type: 'upgrade-phase', phase, reason: this.#upgrade.reason, ...fields });
  }

  /**
   * The upgrade ended (`upgrade-done`); after a failure reloads and scales are taken again.
   * `began` false: one refused before beginUpgrade() (it leaves one under way alone).
   */
  endUpgrade(outcome: UpgradeOutcome, began = true): void {
    if (began) {
      this.#upgrade = undefined;
      this.#passOn = undefined;
    }
    // Held after the last hand-on to the new master (there is no later one): this master is done.
    const held = began && outcome.ok ? this.takeHeldReloads() : undefined;
    held?.settle(this.#refused(held.reasons[0] ?? ''));
    if (!outcome.ok) this.#lastUpgrade = outcome;
    this.#emit({ type: 'upgrade-done', outcome });
    this.#rebalanceRestarted();
  }

  /** What the next master needs to go on from here (see {@link SupervisorResume}). */
  resumeState(): SupervisorResume {
    return { nextGeneration: this.#nextId, reloadRequests: { ...this.#queue.requests }, lastReload: this.#lastReload };
  }

  /** Adds the reload request counts another master made after it handed on its state (an upgrade's refusals and merges). */
  addReloadRequests(counts: Partial<ReloadRequestCounts>): void {
    for (const k of ['started', 'queued', 'merged', 'refused'] as const) this.#queue.requests[k] += counts[k] ?? 0;
  }

  /**
   * Adds another master's per-release traffic totals to this one's (an upgrade hands them
   * on, so `hitless_http_requests_total` goes on rather than restarting). Later entries
   * count as seen more recently (the series kept are the serving one and the most recent other).
   */
  addReleaseTotals(releases: ReleaseTraffic[]): void {
    const at = this.#host.now();
    releases.forEach((r, i) => this.#traffic.addRelease(r.release, { requests: { ...r.requests }, latency: [...r.latency], latencySum: r.latencySumMs }, at + i));
  }

  /**
   * Ends this supervisor for an upgrade: every worker is retired (retire.ts) with its
   * keep-alive connections handed to `receivers` (the new master's workers), the rest
   * drained; resolves with the counts once all are gone (state `stopped`, `stopped`
   * resolved), generations that were draining in the background too (h15 F5: each until its
   * own deadline at the latest; `background`: which, and what they did after their reload
   * was done). A stop() meanwhile joins it (forced: kills at once); a stop that began first
   * drains everything itself, and this resolves with zero counts once it is done.
   * `handedOver` is called once no connection of this master's workers moves any more: when
   * those workers are gone (before the background generations), or at once when the
   * generation hands nothing over (`"handover": false`).
   */
  handOff(receivers: () => Receiver[], handedOver: () => void = () => {}): Promise<RetireCounts & { background: DrainRest }> {
    if (this.#stopping) {
      handedOver();
      return this.#stopping.then(() => ({ ...zeroRetireCounts(), background: { generations: [], counts: zeroRetireCounts() } }));
    }
    // Under way before the hand-over (no reload or scale runs during an upgrade): the old
    // generations draining in the background. This master exits only once they are gone.
    const background = this.#draining.rest();
    this.#state = 'stopping';
    this.#stopGate.reject(new HitlessError('ERR_STOPPING', 'the master is handing over to a new master'));
    this.#current?.cancelRestarts();
    // Workers already draining (a retirement of their own under way) are left to it; the
    // supervisor ends once they are gone too.
    const draining = [...this.#alive].filter((w) => w.state === 'draining');
    const workers = [...this.#alive].filter((w) => w.state !== 'draining');
    // `"handover": false` holds for an upgrade as for a reload: the old workers drain.
    const retirement = new Retirement({
      workers, receivers: this.#current?.spec.handover === false ? undefined : receivers, drainTimeout: this.#drainTimeout(), host: this.#host, routes: this.#routes,
      window: this.#opts.handoverWindow, spread: this.#opts.handoverSpread, spreadMs: this.#current?.spec.handoverSpread, fill: this.#opts.handoverFill,
    });
    const generation = this.#current?.id ?? 0;
    this.#emit({ type: 'reload-draining', generation, workers: workers.length });
    if (this.#current?.spec.handover === false) handedOver();
    const counts = retirement.run().then(async ({ ms, ...c }) => {
      this.#emit({ type: 'reload-drained', generation, ms, ...c });
      if (this.#current?.spec.handover !== false) handedOver();
      const [rest] = await Promise.all([background, ...draining.map((w) => w.exited)]);
      this.#state = 'stopped';
      this.#emit({ type: 'master-stop', reason: 'upgraded' });
      this.#resolveStopped();
      return { ...c, background: rest };
    });
    this.#stopping = counts.then(() => undefined);
    return counts;
  }

  #trafficId(w: Worker): string {
    let id = this.#trafficIds.get(w);
    if (id === undefined) {
      id = `w${this.#nextTrafficId++}`;
      this.#trafficIds.set(w, id);
    }
    return id;
  }

  #emit(e: MasterEvent): void {
    this.emit('event', e);
    this.#follow?.offer(e);
  }

  #drainTimeout(): number {
    return (this.#current ?? this.#latest)?.spec.drainTimeout ?? 0;
  }

  #begin(reason: string, spec: (() => GenerationSpec) | undefined, strategy: StrategyName | undefined, follow: ReloadFollowers, config?: () => ReloadConfigDiff): Promise<ReloadOutcome> {
    this.#follow = follow;
    // What it changes against what serves now, the reload before it done (SupervisorReloadOptions.config).
    const diff = config?.();
    if (diff) {
      const said: MasterEvent = { type: 'reload-config', reason, changes: diff.changes, notes: diff.notes };
      this.emit('event', said);
      follow.offer(said, true);
    }
    const done = this.#run(reason, spec, strategy).then((outcome) => {
      this.#reload = undefined;
      this.#pump();
      // A failed reload leaves its generation serving: replacements that got ready meanwhile take their share now.
      this.#rebalanceRestarted();
      return diff ? { ...outcome, changes: diff.changes, ...(diff.notes.length ? { notes: diff.notes } : {}) } : outcome;
    });
    return done;
  }

  /** Starts the queued reload, if any, once nothing else runs. */
  #pump(): void {
    if (!this.#queue.pending || this.#state !== 'running' || this.#scaling || this.#rebalancing) return;
    const next = this.#queue.take();
    if (next) void this.#begin(next.reason, next.spec, next.strategy, next.follow, next.config).then((o) => next.resolve(o));
  }

  #refused(reason: string): ReloadOutcome {
    return stoppingReload(reason, this.#current?.id ?? 0, this.#host.now());
  }

  async #run(reason: string, specSource: (() => GenerationSpec) | undefined, strategyName: StrategyName | undefined): Promise<ReloadOutcome> {
    const startedAt = this.#host.now();
    const failure = (serving: Generation | undefined, attempted: number, error: unknown): ReloadOutcome =>
      failedReload({ reason, startedAt, now: this.#host.now(), serving: serving?.id ?? 0, attempted, error });
    const old = this.#current;
    this.#state = 'reloading';
    let next: Generation;
    try {
      next = this.#newGeneration((specSource ?? this.#opts.spec)());
    } catch (err) {
      this.#state = 'running';
      return this.#finish(failure(old, this.#nextId, err));
    }
    const run = new ReloadRun(next.id, reason, startedAt, (phase, detail) => this.#emit({ type: 'reload-phase', generation: next.id, phase, ...detail }));
    let resolveDone: (o: ReloadOutcome) => void = () => {};
    this.#reload = { run, done: new Promise((r) => (resolveDone = r)) };
    this.#emit({ type: 'reload-start', generation: next.id, reason, workers: next.size });
    this.#emit({ type: 'reload-phase', generation: next.id, phase: run.phase });
    const ctx = new StrategyContext(this.#seams(), run, old, next);
    // A new worker that dies after going live, while this reload still runs: roll back at once,
    // beside the retirement of `old` that goes on (its connections then go to the rollback).
    let rollback: Promise<ReloadOutcome> | undefined;
    ctx.onDiedLive((died) => {
      if (old && !this.#stopping) rollback = this.#rollBack(run, died, old, next);
    });
    let outcome: ReloadOutcome;
    try {
      await STRATEGIES[strategyName ?? next.spec.strategy].run(ctx);
      // Not done before every new worker has stayed ready a while: a death meanwhile is still
      // this reload's failure, and rolls back (however fast the old generation drained). The
      // new spec's value: a reload re-reads stayReady with the rest of the configuration.
      if (!rollback) await ctx.stayReady(this.#opts.stayReady ?? next.spec.stayReady);
      if (rollback) {
        outcome = { ...(await rollback), connections: connectionCounts(run.counts), forced: run.counts.forced, durationMs: this.#host.now() - startedAt };
        run.to('failed');
        if (this.#state === 'reloading') this.#state = 'running';
        this.#finish(outcome);
        resolveDone(outcome);
        return outcome;
      }
      run.to('done');
      const still = run.stillDraining();
      const warnings = this.#warnings(next);
      // A stopped socket was logged as an error when found: not again as a warning.
      for (const text of this.#socketWarnings(next)) this.#emit({ type: 'warning', generation: next.id, text });
      outcome = {
        ok: true, generation: next.id, attempted: next.id, reason, startedAt,
        durationMs: this.#host.now() - startedAt, forced: run.counts.forced,
        connections: connectionCounts(run.counts),
        ...(still ? { stillDraining: still } : {}),
        ...(ctx.verdict ? { canary: ctx.verdict } : {}),
        ...(warnings.length ? { warnings } : {}),
      };
    } catch (err) {
      // Whatever the strategy left of `next` goes now (stop signal, SIGKILL after a grace:
      // slots.ts discard); `old` keeps serving, and the failure is reported without waiting.
      ctx.discard(next.live());
      if (!run.finished) run.to('failed');
      if (this.#state === 'reloading') this.#state = 'running';
      outcome = failure(this.#current, next.id, err);
      if (ctx.verdict) outcome.canary = ctx.verdict;
      // A canary that served was retired with hand-over back: what became of its connections.
      if (run.retirements > 0) {
        outcome.connections = connectionCounts(run.counts);
        outcome.forced = run.counts.forced;
      }
    }
    if (this.#state === 'reloading') this.#state = 'running';
    this.#finish(outcome);
    resolveDone(outcome);
    return outcome;
  }

  /**
   * A worker of `next` exited unasked after `next` went live, while the reload still retired
   * `old` (a version that crashes seconds after READY): the reload fails, and the old
   * generation's version comes back as a new generation, started and switched to like any
   * reload's (strategy `all`), with `next` retired into it. `old` itself cannot take traffic
   * again: its workers were told to drain and have handed their connections over. The
   * outcome says what serves then: the rollback's generation, or `next` when the rollback
   * failed too (its crashed slots are restarted with backoff, as for any crash).
   */
  async #rollBack(run: ReloadRun, died: DiedLive, old: Generation, next: Generation): Promise<ReloadOutcome> {
    const { worker: w, afterMs } = died;
    const how = w.exitInfo?.signal ? `was killed by ${w.exitInfo.signal}` : `exited with code ${String(w.exitInfo?.code)}`;
    const when = (gen: string): string => (died.beforeSwitch ? `after it was ready, before ${gen} went live (the old workers were retired already)` : `${formatDuration(afterMs)} after ${gen} went live`);
    // The old version as it ran (a `hitless scale` updates a generation's spec too).
    const back = this.#newGeneration(old.spec);
    const text = `worker ${w.label} ${how} ${when(`generation ${next.id}`)}, ` +
      `before the reload was done; rolling back: generation ${back.id} starts generation ${old.id}'s version`;
    this.#emit({ type: 'reload-rollback', generation: next.id, to: back.id, version: old.id, text });
    const error = new HitlessError('ERR_WORKER_EXITED', `worker ${w.label} ${how} ${when('the new generation')}`, {
      details: { output: w.output },
    });
    const backRun = new ReloadRun(back.id, `rollback of generation ${next.id}`, this.#host.now(), (phase, detail) => this.#emit({ type: 'reload-phase', generation: back.id, phase, ...detail }));
    if (this.#reload) this.#reload = { ...this.#reload, run: backRun };
    this.#emit({ type: 'reload-start', generation: back.id, reason: backRun.reason, workers: back.size });
    this.#emit({ type: 'reload-phase', generation: back.id, phase: backRun.phase });
    const seams = this.#seams();
    const serve = seams.serve;
    // Once it serves, what `old` still hands over goes to it, not to the generation it replaces.
    const ctx = new StrategyContext({ ...seams, serve: (gen) => { serve(gen); this.#replacedBy.set(next, back); } }, backRun, next, back);
    let failure: unknown;
    this.#rollingBack = next;
    try {
      await STRATEGIES.all.run(ctx);
      backRun.to('done');
    } catch (err) {
      failure = err;
      await ctx.discard(back.live());
      if (!backRun.finished) backRun.to('failed');
      this.#emit({ type: 'warning', generation: back.id, text: `the rollback to generation ${old.id}'s version failed: ${err instanceof Error ? err.message : String(err)}; generation ${next.id} keeps serving` });
    } finally {
      this.#rollingBack = undefined;
    }
    // Still serving: the slots whose restart waited for the rollback are restarted now.
    if (failure !== undefined && this.#serves(next)) {
      for (const [slot, w] of next.workers.entries()) if (w === undefined && !next.restartTimers.has(slot) && !next.failed.has(slot)) next.restartLater(slot, 0, this.#restartSeams(next));
    }
    const outcome = failedReload({ reason: run.reason, startedAt: run.startedAt, now: this.#host.now(), serving: this.#current?.id ?? next.id, attempted: next.id, error });
    outcome.rollback = { generation: back.id, version: old.id, ok: failure === undefined, ...(failure === undefined ? {} : { error: outcomeError(failure) }) };
    return outcome;
  }

  /**
   * The last reload in status: the one that started last, so a refusal recorded while a
   * reload that started before it runs stays shown when that one ends.
   */
  #record(outcome: ReloadOutcome): void {
    if (!this.#lastReload || outcome.startedAt >= this.#lastReload.startedAt) this.#lastReload = outcome;
  }

  #finish(outcome: ReloadOutcome): ReloadOutcome {
    this.#record(outcome);
    // Bounded series: the serving release and the most recent other one (traffic.ts).
    if (this.#current) this.#traffic.releases(releaseKey(this.#current.id, this.#current.release));
    const done: MasterEvent = { type: 'reload-done', outcome };
    this.#emit(done);
    this.#follow?.offer(done, true);
    // Its requests have their outcome: later events (a crash, a background drain's end) are no longer theirs.
    this.#follow = undefined;
    return outcome;
  }

  /** `p`, or ERR_STOPPING once a stop begins (every wait of a start, scale or reload goes through it). */
  #gate<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.#stopGate.promise]);
  }

  /** What a reload's strategy context may do to the supervisor (reload-context.ts). */
  #seams(): ReloadSeams {
    return {
      host: this.#host,
      traffic: this.#traffic,
      routes: this.#routes,
      open: (w) => this.#traffic.lastOpen(this.#trafficId(w)),
      served: (w) => this.#traffic.served(this.#trafficId(w)),
      lends: this.#opts.canaryLend !== false,
      spawn: (gen, slot, warmed) => this.#spawn(gen, slot, 0, warmed),
      gate: (p) => this.#gate(p),
      serve: (gen) => {
        if (this.#stopping) throw new HitlessError('ERR_STOPPING', 'the master began stopping');
        this.#current = gen;
        // What earlier generations did to the sockets is history now (listenerStopped).
        for (const [name, a] of this.#socketAlerts) if (a.found < gen.id) this.#socketAlerts.delete(name);
      },
      serving: (gen) => this.#current === gen,
      retire: async (workers, to, run, fullSpeed) => {
        await this.#retire(workers, to, run, { fullSpeed });
      },
      warm: (w) => this.#warm(w),
      refill: (gen, slot) => {
        // A put-back worker that crashed on its own was already scheduled (onCrash).
        if (!gen.restartTimers.has(slot) && gen.workers[slot] === undefined) gen.restartLater(slot, 0, this.#restartSeams(gen));
      },
      emit: (e) => this.#emit(e),
    };
  }

  /** What to check about `gen`'s sockets, judged from its ready workers' hello (listening.ts). */
  #socketWarnings(gen: Generation): string[] {
    return listenerWarnings(gen.id, gen.spec, gen.live().filter((w) => w.readyAt !== undefined).map((w) => w.hello));
  }

  /**
   * {@link #socketWarnings}, then the held sockets found not listening since `gen` was
   * started (listenerStopped); with `held` ("name address" of the sockets held now), only those.
   */
  #warnings(gen: Generation, held?: Set<string>): string[] {
    const alerts = [...this.#socketAlerts]
      .filter(([name, a]) => a.found >= gen.id && (held === undefined || held.has(`${name} ${a.address}`)))
      .map(([, a]) => a.text);
    const loop = gen.crashLoopWarning();
    return [...(loop === undefined ? [] : [loop]), ...this.#socketWarnings(gen), ...alerts, ...(this.#opts.checks?.() ?? [])];
  }

  /**
   * Retires `workers` (retire.ts): with hand-over to the ready workers of `to` where both
   * sides speak the channel, else their stop signal; SIGKILL at drainTimeout. Reports its
   * start and counts as events, and adds the counts to `run`. Resolves once the retirement
   * is released (every worker gone, or holding only upgraded connections, or
   * `drain.reloadWait` passed): what is left drains in the background (draining.ts) and
   * reports its final counts in `reload-drained` when it ends. `fullSpeed`: no pacing;
   * `fill: false`: round robin over the receivers, not in turn. Resolves with the counts
   * at release.
   */
  async #retire(workers: Worker[], to: Generation | undefined, run: ReloadRun | undefined, how: { fullSpeed?: boolean; fill?: boolean } = {}): Promise<RetireCounts> {
    if (workers.length === 0) return zeroRetireCounts();
    const generation = workers[0]?.generation ?? 0;
    const drainSpec = (to ?? this.#current ?? this.#latest)?.spec.drain;
    const takers = to?.spec.handover ? to : undefined;
    // A rollback replaced `to` (supervisor #rollBack): what is left goes to the generation that replaced it.
    const taking = (g: Generation): Generation => this.#replacedBy.get(g) ?? g;
    const retirement = new Retirement({
      workers,
      receivers: takers && (() => taking(takers).live().filter((w) => w.acceptsConnections)),
      drainTimeout: workers[0]?.spec.drainTimeout ?? this.#drainTimeout(),
      reloadWait: drainSpec?.reloadWait,
      host: this.#host,
      open: (w) => this.#traffic.lastOpen(this.#trafficId(w)),
      busy: (w) => this.#traffic.lastBusy(this.#trafficId(w)),
      routes: this.#routes,
      webSockets: to?.spec.handover
        ? { receivers: () => taking(to).live().filter((w) => w.webSockets !== undefined).map(webSocketReceiver), routes: this.#wsRoutes }
        : undefined,
      window: this.#opts.handoverWindow,
      spread: this.#opts.handoverSpread,
      // The receiving generation's setting: a reload that changes it uses it already.
      spreadMs: how.fullSpeed === true ? 0 : (takers ?? workers[0])?.spec.handoverSpread,
      fill: how.fill === false ? false : this.#opts.handoverFill,
    });
    const dest = retirement.handover && takers ? { to: takers.id } : {};
    // A reload's own retirement: its followers see this generation's drain (not a scale's, not an earlier reload's).
    if (run) this.#follow?.retires(generation);
    // Before the phase: `hitless reload` names where the connections go when the phase says they move.
    this.#emit({ type: 'reload-draining', generation, workers: workers.length, ...dest });
    run?.to(retirement.handover ? 'handover' : 'draining');
    const ended = retirement.run().then(({ ms, transitMs, ...counts }) => {
      const { forced, handedOver, returned, lost, drained, cut, webSockets, webSocketsClosed } = counts;
      this.#emit({
        type: 'reload-drained', generation, ...dest, forced, ms, handedOver, returned, lost, drained, cut,
        ...(webSockets ? { webSockets } : {}), ...(webSocketsClosed ? { webSocketsClosed } : {}), ...(transitMs ? { transitMs } : {}),
      });
      return counts;
    });
    this.#draining.add(retirement, ended);
    const released = await retirement.released;
    let counts: RetireCounts = released.counts;
    if (released.still.length === 0) counts = await ended;
    else {
      const { upgraded, requests, connections, unknown } = held(released.still);
      this.#emit({
        type: 'drain-background', generation, workers: released.still.length, upgraded, requests, connections, unknown, deadline: retirement.deadline,
        ...(released.reloadWait === undefined ? {} : { reloadWait: released.reloadWait }),
      });
      run?.lingering.push(retirement);
      for (const stopped of this.#draining.background(retirement, drainSpec?.maxGenerations ?? Infinity)) {
        this.#emit({ type: 'drain-limit', generation: stopped, maxGenerations: drainSpec?.maxGenerations ?? 0 });
      }
    }
    if (run) {
      run.add(counts);
      if (run.phase === 'handover') run.to('draining');
    }
    return counts;
  }

  /** A reload's new worker after READY: its warm-up (warmup.ts), then its serving priority if it waited for it. */
  async #warm(w: Worker): Promise<void> {
    let event: WarmupEvent | undefined;
    try {
      await warmUp(w, this.#opts.warmer, (e) => (event = e), () => this.#host.now());
    } finally {
      const restored = this.#lowUntilWarm.has(w) ? this.#giveBack(w) : undefined;
      this.#lowUntilWarm.delete(w);
      if (event) this.#emit(restored === undefined ? event : { ...event, nice: restored });
    }
  }

  /** Gives a worker at its boot priority the serving one back, once: the nice value set, or undefined (not low, or refused and reported). */
  #giveBack(w: Worker): number | undefined {
    return this.#unguard(w) ? this.#priority.restore(w, w.spec.bootPriority, (e) => this.#emit(e)) : undefined;
  }

  /** Cancels `w`'s starved-boot timer; true when it had one (it was still at its boot priority). */
  #unguard(w: Worker): boolean {
    const guard = this.#low.get(w);
    if (guard === undefined) return false;
    guard.cancel();
    this.#low.delete(w);
    return true;
  }

  #newGeneration(spec: GenerationSpec): Generation {
    this.#latest = new Generation(this.#nextId++, spec);
    return this.#latest;
  }

  /** `warmed`: a reload's new worker that is warmed up after READY (its priority comes back after the warm-up). */
  #spawn(gen: Generation, slot: number, restarts: number, warmed = false): Worker {
    // A stop closes the master's sockets (master.ts): no worker may start on them after it.
    if (this.#stopping) throw new HitlessError('ERR_STOPPING', 'the master began stopping');
    // Booting beside workers that serve: at a lower priority until READY, or until its
    // warm-up is done, so the warm-up's CPU (V8 compiling what requests run) is idle CPU too.
    // Forked at it (startAt), then every thread set (lower: what the fork could not reach).
    const beside = this.#current !== undefined;
    const forkNice = beside && this.#opts.forkAtBootNice !== false ? this.#priority.startAt(gen.spec.bootPriority) : undefined;
    const w = new Worker(this.#host, gen.spec, gen.id, slot, restarts, forkNice);
    gen.workers[slot] = w;
    gen.failed.delete(slot);
    this.#alive.add(w);
    const booting = beside ? this.#priority.lower(w, gen.spec.bootPriority) : undefined;
    if (booting !== undefined && warmed && (gen.spec.warmup?.length ?? 0) > 0) this.#lowUntilWarm.add(w);
    if (booting !== undefined) {
      // A machine busy enough leaves a low worker almost no CPU: past half its readyTimeout
      // it gets the serving priority back, so that it still makes it (a slower reload, not a failed one).
      const afterMs = Math.min(MAX_TIMER_MS, Math.max(1, Math.floor(gen.spec.readyTimeout / 2)));
      this.#low.set(w, this.#host.setTimer(() => {
        const back = this.#giveBack(w);
        if (back !== undefined) this.#emit({ type: 'worker-boot-priority', generation: gen.id, slot, pid: w.pid, nice: back, afterMs });
      }, afterMs));
    }
    this.#emit({ type: 'worker-spawn', generation: gen.id, slot, pid: w.pid, ...(booting === undefined ? {} : { nice: booting }) });
    w.on('ready', () => {
      // Restored before anyone hears of the READY: the switch never finds it still low.
      const restored = this.#lowUntilWarm.has(w) ? undefined : this.#giveBack(w);
      this.#emit({
        type: 'worker-ready', generation: gen.id, slot, pid: w.pid ?? 0, ms: this.#host.now() - w.startedAt,
        ...(restored === undefined ? {} : { nice: restored }),
      });
    });
    w.on('status', (text) => this.#emit({ type: 'worker-status', generation: gen.id, slot, text }));
    w.on('output', (stream, line) => this.#emit({ type: 'worker-output', generation: gen.id, slot, stream, line }));
    w.on('message', (m, handle) => {
      if (m.type === 'stats') {
        const meta = { generation: gen.id, release: releaseKey(gen.id, gen.release), startedAt: w.startedAt };
        this.#traffic.record(this.#trafficId(w), meta, this.#host.now(), countsOf(m), m.connections, m.busy);
        return;
      }
      // A connection handed over (by a retiring worker); one sent out of turn goes back to it.
      if (m.type === 'conn' && handle != null) this.#routes.receive(w, m.listener, handle, this.#opts.handoverPaceLeft === false ? undefined : m.left);
      if (m.type === 'ws-conn' && handle != null) this.#wsRoutes.receive(w, m, handle);
    });
    w.on('exit', ({ code, signal }) => {
      this.#unguard(w);
      this.#alive.delete(w);
      this.#traffic.exited(this.#trafficId(w), this.#host.now());
      this.#emit({ type: 'worker-exit', generation: gen.id, slot, pid: w.pid, code, signal, planned: w.planned });
      this.#onCrash(gen, w);
    });
    return w;
  }

  /** A worker of the serving generation exited without being asked: restart it with backoff. */
  #onCrash(gen: Generation, w: Worker): void {
    if (w.planned || !this.#serves(gen) || gen.workers[w.slot] !== w || this.#joining.has(w)) return;
    gen.workers[w.slot] = undefined;
    gen.restartLater(w.slot, w.restarts, this.#restartSeams(gen), w);
  }

  /** True while `gen` serves and the master is not stopping: its empty slots are refilled. */
  #serves(gen: Generation): boolean {
    return !this.#stopping && gen === this.#current;
  }

  #restartSeams(gen: Generation): RestartSeams {
    return {
      host: this.#host,
      spawn: (slot, restarts) => {
        const w = this.#spawn(gen, slot, restarts);
        w.once('ready', () => this.#settle(gen, w));
        return w;
      },
      emit: (e) => {
        this.#emit(e);
        // A slot given up: say what that leaves (nothing serving is an error in the log too).
        const loop = e.type === 'slot-failed' ? gen.crashLoopWarning() : undefined;
        if (loop !== undefined) this.#emit({ type: 'warning', generation: gen.id, text: loop });
      },
      // While a rollback replaces `gen`, a crashed slot of it is not restarted as long as
      // another of its workers takes the new connections: another copy of the version just
      // judged bad would only take connections from the queue and lose them at its next crash.
      allowed: () => this.#serves(gen) && !(this.#rollingBack === gen && gen.live().some((w) => w.state === 'ready')),
    };
  }
}
