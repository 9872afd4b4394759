/**
 * What one reload lends its strategy: the ReloadContext (strategy.ts) over the supervisor's
 * seams. The rules that hold for every strategy live here, once: a worker of the next
 * generation that dies unasked after it was ready fails the reload until it goes live, and
 * one that dies unasked after it went live, while the reload still runs, is kept for the
 * supervisor to roll back (`diedLive`), however fast the old generation drained: the reload
 * is not done before every new worker has been ready for its spec's stayReady (stayReady()); every
 * wait ends when the master begins stopping;
 * switching is refused once it stops; the canary's verdict is kept for the outcome.
 */
import type { Generation } from './generation.js';
import type { HandoverRoutes, Receiver } from './handover.js';
import type { Host } from './host.js';
import type { ReloadRun } from './reload.js';
import { diedAfterReady, discard, startSlots } from './slots.js';
import { ConnectionSplit, type SplitAsk } from './split.js';
import type { ReloadContext } from './strategy.js';
import type { TrafficBook } from './traffic.js';
import type { CanaryLend, CanaryReport, MasterEvent, ReloadPhase } from './types.js';
import type { Worker } from './worker.js';

/** A worker of the next generation that died while the reload ran, after the switch (StrategyContext.diedLive). */
export interface DiedLive {
  worker: Worker;
  /** How long after the switch (0 with `beforeSwitch`). */
  afterMs: number;
  /** It died after its READY but before the switch, unseen by the strategy. */
  beforeSwitch?: boolean;
}

/** What the supervisor lends a reload (its own state stays its own). */
export interface ReloadSeams {
  readonly host: Host;
  readonly traffic: TrafficBook;
  /** Where the connections each worker sends go (a split opens routes for the serving workers). */
  readonly routes: HandoverRoutes;
  /** A worker's open connections as it last reported them. */
  open(w: Worker): number | undefined;
  /** Responses a worker reported in all. */
  served(w: Worker): number;
  /** False: a starved canary is lent nothing more (measurements only). */
  readonly lends: boolean;
  /** Starts and registers a worker in `slot` of `gen` (`warmed`: it is warmed up after READY). */
  spawn(gen: Generation, slot: number, warmed?: boolean): Worker;
  /** `p`, or a rejection (ERR_STOPPING) once the master begins stopping. */
  gate<T>(p: Promise<T>): Promise<T>;
  /** Makes `gen` the serving generation; throws ERR_STOPPING once the master is stopping. */
  serve(gen: Generation): void;
  /** True while `gen` serves. */
  serving(gen: Generation): boolean;
  /**
   * Retires `workers` (retire.ts), their connections to `to`, counted in `run`; with
   * `fullSpeed`, the hand-over is not paced (a rejected canary: every request its
   * connections carry until they move gets the version judged bad).
   */
  retire(workers: Worker[], to: Generation | undefined, run: ReloadRun, fullSpeed?: boolean): Promise<void>;
  /** Warms a new worker up after READY (warmup.ts); rejects (ERR_WARMUP_FAILED) like a failed readiness. */
  warm(w: Worker): Promise<void>;
  /** Refills an empty slot with backoff, as after a crash. */
  refill(gen: Generation, slot: number): void;
  emit(e: MasterEvent): void;
}

/**
 * One reload's context (the supervisor creates one per ReloadRun).
 *
 * @example
 * const ctx = new StrategyContext(seams, run, old, next);
 * await STRATEGIES[next.spec.strategy].run(ctx);
 */
export class StrategyContext implements ReloadContext {
  readonly old: Generation | undefined;
  readonly next: Generation;
  readonly traffic: TrafficBook;
  /** The canary's decision, once there is one (it goes into the outcome). */
  verdict: CanaryReport | undefined;
  /**
   * The first worker of `next` that exited unasked after `next` went live, while this reload
   * still ran (retiring the old generation), and how long after the switch: the supervisor
   * then rolls back to the old generation's version. `beforeSwitch`: it died after its READY
   * but before the switch, and no later wait of the strategy saw it, after this reload had
   * retired old workers (rolling: while the last old worker was retired); with the old
   * generation still whole, the switch fails the reload instead (switchTo).
   */
  diedLive: DiedLive | undefined;
  #switchedAt = 0;
  #onDiedLive: ((d: DiedLive) => void) | undefined;
  /** The first worker of `next` that died unasked after READY before the switch. */
  #diedBeforeSwitch: Worker | undefined;
  /** This reload retired a worker of `old` (rolling does before the switch): `old` is no longer whole. */
  #oldRetired = false;
  readonly #s: ReloadSeams;
  readonly #run: ReloadRun;
  /** Rejects when a worker of `next` dies unasked after it was ready, before the switch. */
  readonly #died: Promise<never>;
  #nextDied: (e: Error) => void = () => {};
  /** Resolves when {@link diedLive} is set. */
  readonly #diedLiveSeen: Promise<void>;
  #sawDiedLive: () => void = () => {};

  constructor(seams: ReloadSeams, run: ReloadRun, old: Generation | undefined, next: Generation) {
    this.#s = seams;
    this.#run = run;
    this.old = old;
    this.next = next;
    this.traffic = seams.traffic;
    this.#died = new Promise<never>((_r, reject) => (this.#nextDied = reject));
    this.#died.catch(() => {});
    this.#diedLiveSeen = new Promise<void>((resolve) => (this.#sawDiedLive = resolve));
  }

  /** Calls `fn` when {@link diedLive} is set (once). */
  onDiedLive(fn: (d: DiedLive) => void): void {
    this.#onDiedLive = fn;
  }

  phase(p: ReloadPhase): void {
    this.#run.to(p);
  }

  spawn(gen: Generation, slot: number, warmed = false): Worker {
    const w = this.#s.spawn(gen, slot, warmed);
    if (gen === this.next) {
      // Before READY its own waitReady() reports the exit, with the reason.
      w.once('exit', () => {
        if (w.planned || w.readyAt === undefined) return;
        if (!this.#s.serving(this.next)) {
          this.#diedBeforeSwitch ??= w;
          this.#nextDied(diedAfterReady([w]));
        } else this.#diedLiveNow({ worker: w, afterMs: this.#s.host.now() - this.#switchedAt });
      });
    }
    return w;
  }

  start(gen: Generation, slots: readonly number[]): Promise<Worker[]> {
    return startSlots(slots, {
      spawn: (slot) => this.spawn(gen, slot, true),
      // Ready = READY=1, then the warm-up answered (when configured): both before the switch.
      ready: (w) => this.#s.gate(Promise.race([w.waitReady(this.next.spec.readyTimeout).then(() => this.#s.warm(w)), this.#died])),
      host: this.#s.host,
    }, this.old ? gen.spec.bootConcurrency : undefined);
  }

  switchTo(): void {
    const early = this.#diedBeforeSwitch;
    // Dead before it went live, unseen by the strategy (no wait of it came after the death),
    // while this reload retired no old worker yet (a canary that is the whole new generation,
    // whose worker died while the split ended): the old generation is whole and serving, so
    // the reload fails like any death before the switch, and nothing is rolled back.
    if (early !== undefined && !this.#oldRetired) throw diedAfterReady([early]);
    this.#s.serve(this.next);
    this.#switchedAt = this.#s.host.now();
    this.#run.to('switched');
    this.#s.emit({ type: 'reload-ready', generation: this.next.id, ms: this.#s.host.now() - this.#run.startedAt });
    // Old workers were retired already (rolling: the death came while the last one drained):
    // it is rolled back like a death after the switch, or `next` would serve with that slot
    // empty for good (a crash is restarted only in the serving generation, and it was not
    // serving then).
    if (early !== undefined) this.#diedLiveNow({ worker: early, afterMs: 0, beforeSwitch: true });
  }

  /** Records the first death of a live worker of `next` while the reload runs, and tells the supervisor. */
  #diedLiveNow(d: DiedLive): void {
    if (this.#run.finished || this.diedLive !== undefined) return;
    this.diedLive = d;
    this.#onDiedLive?.(d);
    this.#sawDiedLive();
  }

  /**
   * After the strategy went live: waits (phase `settling`) until every worker of `next` has
   * been ready for `ms`, so that one exiting right after its READY still fails the reload
   * and is rolled back (diedLive) when the old generation drained faster than that (report
   * h21 F1: drained in 9 ms, the new workers exited 77 ms later, the reload said done).
   * Nothing to wait for (all ready long enough: the usual case, a drain takes longer) leaves
   * the phase as it is. Ends early once a worker of `next` died live, and when the master
   * begins stopping (the reload went live; the stop drains it like any generation).
   */
  async stayReady(ms: number): Promise<void> {
    for (;;) {
      if (this.diedLive !== undefined) return;
      const now = this.#s.host.now();
      // A worker not ready yet (none should be, after the switch) counts as ready from now.
      const latest = Math.max(...this.next.live().filter((w) => w.exitInfo === undefined).map((w) => w.readyAt ?? now));
      const left = latest + ms - now;
      if (!(left > 0)) return;
      this.#run.to('settling', { settleMs: ms });
      let timer: { cancel(): void } | undefined;
      const elapsed = new Promise<void>((resolve) => (timer = this.#s.host.setTimer(resolve, left)));
      const stopping = await this.#s.gate(Promise.race([elapsed, this.#diedLiveSeen])).then(() => false, () => true);
      timer?.cancel();
      if (stopping) return;
    }
  }

  retire(workers: Worker[], to: Generation | undefined, options: { fullSpeed?: boolean } = {}): Promise<void> {
    const old = this.old;
    if (old !== undefined && workers.some((w) => w.generation === old.id)) this.#oldRetired = true;
    return this.#s.retire(workers, to, this.#run, options.fullSpeed);
  }

  split(from: Worker[], to: () => Receiver[], ask: SplitAsk, within: number): ConnectionSplit {
    const split = new ConnectionSplit({ senders: from, receivers: to, ask, within, routes: this.#s.routes, host: this.#s.host, open: (w) => this.#s.open(w) });
    split.start();
    return split;
  }

  discard(workers: Worker[]): void {
    void discard(workers, this.#s.host);
  }

  refill(gen: Generation, slot: number): void {
    this.#s.refill(gen, slot);
  }

  now(): number {
    return this.#s.host.now();
  }

  wait(ms: number): Promise<void> {
    let timer: { cancel(): void } | undefined;
    const elapsed = new Promise<void>((resolve) => (timer = this.#s.host.setTimer(resolve, ms)));
    return this.#s.gate(Promise.race([elapsed, this.#died])).finally(() => timer?.cancel());
  }

  report(r: CanaryReport): void {
    if (r.verdict !== 'pending') this.verdict = r;
    this.#s.emit({ type: r.verdict === 'pending' ? 'canary-progress' : 'canary-verdict', ...r });
  }

  served(w: Worker): number {
    return this.#s.served(w);
  }

  get lends(): boolean {
    return this.#s.lends;
  }

  lent(e: Omit<CanaryLend, 'type'>): void {
    this.#s.emit({ type: 'canary-lend', ...e });
  }
}
