/**
 * The one owner of supervisor state (tableflip's upgrader.go): generations, workers, the
 * reload in flight and the one queued behind it, crash restarts, stop. Everything else
 * (signals, the control socket, watch and fetch triggers) reaches it through reload(),
 * scale(), stop() and status(), and hears back through its events.
 *
 * A reload is a ReloadRun (reload.ts) moved through its phases by a strategy
 * (strategies/*.ts); the OS comes in through a Host (host.ts), so unit tests drive every
 * phase with a fake one.
 */
import { EventEmitter } from 'node:events';
import { HitlessError, isHitlessError } from '../errors.js';
import { Generation } from './generation.js';
import { PROTOCOL } from './channel.js';
import { HANDOVER_WINDOW_PER_RECEIVER, HandoverBroker } from './handover.js';
import { listenerWarnings } from './listening.js';
import { ReloadRun, type ReloadPhase } from './reload.js';
import type { GenerationSpec } from './spec.js';
import type { ReloadContext, ReloadStrategy } from './strategy.js';
import { all } from './strategies/all.js';
import { canary } from './strategies/canary.js';
import { rolling } from './strategies/rolling.js';
import { countsOf, releaseKey, TrafficBook } from './traffic.js';
import { Worker } from './worker.js';
import type { Host } from './host.js';
import type { StrategyName } from '../config/types.js';
import type {
  CanaryReport, ListenerStatus, MasterEvent, MasterHandle, ReloadOptions, ReloadOutcome, ScaleOutcome, StatusSnapshot, WorkerStatus,
} from './types.js';

export const STRATEGIES: Record<StrategyName, ReloadStrategy> = { all, rolling, canary };

export interface SupervisorOptions {
  host: Host;
  /** The spec of the next generation, read when it is created (a reload may bring its own). */
  spec: () => GenerationSpec;
  version: string;
  listeners: () => ListenerStatus[];
  /** Per-pid resident memory and CPU for status (optional: /proc on Linux). */
  usage?: (pids: number[]) => Map<number, { rssBytes?: number; cpuPercent?: number }>;
}

export type SupervisorState = StatusSnapshot['state'];

/** reload()'s options; `spec` replaces the supervisor's spec source for this reload. */
export interface SupervisorReloadOptions extends ReloadOptions {
  spec?: () => GenerationSpec;
}

interface Queued {
  reason: string;
  spec: (() => GenerationSpec) | undefined;
  strategy: StrategyName | undefined;
  promise: Promise<ReloadOutcome>;
  resolve: (o: ReloadOutcome) => void;
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
  /** A scale is running: reloads queue behind it. */
  #scaling = false;
  /** Workers a scale-up started that are not ready yet: a crash fails the scale, no restart. */
  readonly #joining = new Set<Worker>();
  #queued: Queued | undefined;
  #lastReload: ReloadOutcome | undefined;
  #stopping: Promise<void> | undefined;
  /** Rejects every pending ready() wait when a stop begins. */
  #stopGate: { promise: Promise<never>; reject: (e: Error) => void };
  /** Where each retiring worker hands its connections. */
  readonly #brokers = new Map<Worker, HandoverBroker>();
  /** What workers reported on the channel (stats messages). */
  readonly #traffic = new TrafficBook();
  readonly #trafficIds = new WeakMap<Worker, string>();
  #nextTrafficId = 1;
  #resolveStopped: () => void = () => {};
  /** Resolves once a stop (graceful or forced) has finished and no worker is left. */
  readonly stopped = new Promise<void>((resolve) => (this.#resolveStopped = resolve));

  constructor(opts: SupervisorOptions) {
    super();
    this.#opts = opts;
    this.#host = opts.host;
    this.#startedAt = opts.host.now();
    let reject: (e: Error) => void = () => {};
    const promise = new Promise<never>((_r, rej) => (reject = rej));
    promise.catch(() => {});
    this.#stopGate = { promise, reject };
  }

  get state(): SupervisorState {
    return this.#state;
  }

  /** The serving generation. */
  get current(): Generation | undefined {
    return this.#current;
  }

  /** Starts generation 1 and resolves when all its workers are ready; throws ERR_START_FAILED. */
  async start(): Promise<void> {
    const gen = this.#newGeneration(this.#opts.spec());
    const workers = gen.workers.map((_, slot) => this.#spawn(gen, slot, 0));
    const failure = await Promise.all(workers.map((w) => this.#raceStop(w.waitReady(gen.spec.readyTimeout)))).then(
      () => workers.find((w) => w.exitInfo !== undefined) && this.#diedAfterReady(workers),
      (err: unknown) => err,
    );
    if (failure !== undefined) {
      await this.#discard(workers);
      const e = isHitlessError(failure) ? failure : undefined;
      throw new HitlessError('ERR_START_FAILED', `the first generation did not start: ${e?.message ?? String(failure)}`, {
        cause: failure,
        details: { output: e?.details.output ?? [] },
      });
    }
    this.#current = gen;
    for (const text of this.#warnings(gen)) this.#emit({ type: 'warning', generation: gen.id, text });
    if (this.#state === 'starting') this.#state = 'running';
    // A reload asked for while the first generation was starting waited in the queue.
    this.#pump();
  }

  /**
   * Reloads: a new generation from `spec` (default: the supervisor's spec source) with
   * `strategy` (default: the spec's). One reload at a time; a request during one is
   * queued, and further ones join the queued one (their outcome says `coalesced`; the last
   * spec or strategy given wins).
   */
  reload(reason: string, options: SupervisorReloadOptions = {}): Promise<ReloadOutcome> {
    const { spec, strategy } = options;
    if (this.#stopping || this.#state === 'stopped') return Promise.resolve(this.#refused(reason));
    if (this.#queued) {
      if (spec) this.#queued.spec = spec;
      if (strategy) this.#queued.strategy = strategy;
      this.#emit({ type: 'reload-queued', reason });
      return this.#queued.promise.then((o) => ({ ...o, coalesced: true }));
    }
    if (!this.#reload && !this.#scaling && this.#state === 'running') return this.#begin(reason, spec, strategy);
    let resolve: (o: ReloadOutcome) => void = () => {};
    const promise = new Promise<ReloadOutcome>((r) => (resolve = r));
    this.#queued = { reason, spec, strategy, promise, resolve };
    this.#emit({ type: 'reload-queued', reason });
    return promise;
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
    const result = (extra: Partial<ScaleOutcome>): ScaleOutcome => ({
      ok: true, generation: gen?.id ?? 0, from, to: workers, startedAt, durationMs: this.#host.now() - startedAt, forced: 0, ...extra,
    });
    const refuse = (code: string, message: string): ScaleOutcome => result({ ok: false, to: from, error: { code, message, output: [] } });
    if (this.#stopping || !gen) return refuse('ERR_STOPPING', 'the master is stopping; no scale');
    if (!Number.isInteger(workers) || workers < 1) return refuse('ERR_USAGE', `scale: expected a whole number of workers >= 1, got ${String(workers)}`);
    if (this.#reload || this.#queued || this.#scaling || this.#state !== 'running') {
      return refuse('ERR_SCALE_BUSY', 'a reload or another scale is in progress; run `hitless scale` again once it is done');
    }
    this.#scaling = true;
    this.#emit({ type: 'scale-start', generation: gen.id, from, to: workers });
    let outcome: ScaleOutcome;
    try {
      let forced = 0;
      if (workers > from) {
        gen.resize(workers);
        const fresh: Worker[] = [];
        for (let slot = from; slot < workers; slot++) fresh.push(this.#spawn(gen, slot, 0));
        for (const w of fresh) this.#joining.add(w);
        const failure = await Promise.all(fresh.map((w) => this.#raceStop(w.waitReady(gen.spec.readyTimeout)))).then(
          () => (fresh.some((w) => w.exitInfo !== undefined) ? this.#diedAfterReady(fresh) : undefined),
          (err: unknown) => err,
        );
        for (const w of fresh) this.#joining.delete(w);
        if (failure !== undefined) {
          await this.#discard(fresh);
          gen.resize(from);
          throw failure;
        }
      } else if (workers < from) {
        forced = await this.#retire(gen.resize(workers), undefined, undefined);
      }
      gen.spec = { ...gen.spec, workers, config: { ...gen.spec.config, workers } };
      outcome = result({ forced });
    } catch (err) {
      const e = isHitlessError(err) ? err : new HitlessError('ERR_RELOAD_FAILED', String(err), { cause: err });
      const output = Array.isArray(e.details.output) ? (e.details.output as string[]) : [];
      outcome = result({ ok: false, to: from, error: { code: e.code, message: e.message, output } });
    } finally {
      this.#scaling = false;
    }
    this.#emit({ type: 'scale-done', outcome });
    if (!this.#reload) this.#pump();
    return outcome;
  }

  stop(force = false): Promise<void> {
    if (this.#stopping) {
      if (force) for (const w of this.#alive) w.kill();
      return this.#stopping;
    }
    this.#state = 'stopping';
    this.#stopGate.reject(new HitlessError('ERR_STOPPING', 'the master began stopping during the reload'));
    this.#current?.cancelRestarts();
    const queued = this.#queued;
    this.#queued = undefined;
    queued?.resolve(this.#refused(queued.reason));
    this.#stopping = (async () => {
      const workers = [...this.#alive];
      for (const w of workers) (force ? w.kill() : w.stop());
      await this.#drain(workers, this.#drainTimeout());
      // A reload in flight gives up at its next step (the stop gate); then drain stragglers.
      await this.#reload?.done;
      const stragglers = [...this.#alive];
      for (const w of stragglers) (force ? w.kill() : w.stop());
      await this.#drain(stragglers, this.#drainTimeout());
      this.#state = 'stopped';
      this.#emit({ type: 'master-stop', reason: force ? 'forced' : 'graceful' });
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
    workers.sort((a, b) => a.generation - b.generation || a.slot - b.slot);
    const { rss, heapUsed } = process.memoryUsage();
    const run = this.#reload?.run;
    const warnings = this.#current ? this.#warnings(this.#current) : [];
    return {
      version: this.#opts.version,
      pid: process.pid,
      startedAt: this.#startedAt,
      uptimeMs: this.#host.now() - this.#startedAt,
      state: this.#state,
      generation: this.#current?.id ?? 0,
      release: this.#current?.release,
      listeners: this.#opts.listeners(),
      workers,
      lastReload: this.#lastReload,
      reloadQueued: this.#queued !== undefined,
      reload: run && { generation: run.generation, phase: run.phase, reason: run.reason, startedAt: run.startedAt },
      memory: { rssBytes: rss, heapUsedBytes: heapUsed },
      ...(warnings.length ? { warnings } : {}),
      traffic: this.#traffic.snapshot([...this.#alive], this.#current, now),
    };
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
  }

  #drainTimeout(): number {
    return (this.#current ?? this.#latest)?.spec.drainTimeout ?? 0;
  }

  #begin(reason: string, spec: (() => GenerationSpec) | undefined, strategy: StrategyName | undefined): Promise<ReloadOutcome> {
    const done = this.#run(reason, spec, strategy).then((outcome) => {
      this.#reload = undefined;
      this.#pump();
      return outcome;
    });
    return done;
  }

  /** Starts the queued reload, if any, once nothing else runs. */
  #pump(): void {
    const next = this.#queued;
    if (!next || this.#state !== 'running' || this.#scaling) return;
    this.#queued = undefined;
    void this.#begin(next.reason, next.spec, next.strategy).then((o) => next.resolve(o));
  }

  #refused(reason: string): ReloadOutcome {
    const gen = this.#current?.id ?? 0;
    return {
      ok: false, generation: gen, attempted: gen, reason, startedAt: this.#host.now(), durationMs: 0, forced: 0,
      error: { code: 'ERR_STOPPING', message: 'the master is stopping; no reload', output: [] },
    };
  }

  async #run(reason: string, specSource: (() => GenerationSpec) | undefined, strategyName: StrategyName | undefined): Promise<ReloadOutcome> {
    const startedAt = this.#host.now();
    const old = this.#current;
    this.#state = 'reloading';
    let next: Generation;
    try {
      next = this.#newGeneration((specSource ?? this.#opts.spec)());
    } catch (err) {
      this.#state = 'running';
      return this.#finish(this.#failure(reason, startedAt, old, this.#nextId, err));
    }
    const run = new ReloadRun(next.id, reason, startedAt, (phase: ReloadPhase) => {
      this.#emit({ type: 'reload-phase', generation: next.id, phase });
    });
    let resolveDone: (o: ReloadOutcome) => void = () => {};
    this.#reload = { run, done: new Promise((r) => (resolveDone = r)) };
    this.#emit({ type: 'reload-start', generation: next.id, reason });
    this.#emit({ type: 'reload-phase', generation: next.id, phase: run.phase });
    const strategy = STRATEGIES[strategyName ?? next.spec.strategy];
    let verdict: CanaryReport | undefined;
    // A worker of `next` that dies unasked before the switch fails the reload.
    let nextDied: (e: Error) => void = () => {};
    const died = new Promise<never>((_r, reject) => (nextDied = reject));
    died.catch(() => {});
    const ctx: ReloadContext = {
      old,
      next,
      phase: (p) => run.to(p),
      spawn: (gen, slot) => {
        const w = this.#spawn(gen, slot, 0);
        if (gen === next) {
          // Before READY its own waitReady() reports the exit, with the reason.
          w.once('exit', () => {
            if (!w.planned && w.readyAt !== undefined && this.#current !== next) nextDied(this.#diedAfterReady([w]));
          });
        }
        return w;
      },
      ready: (w) => this.#raceStop(Promise.race([w.waitReady(next.spec.readyTimeout), died])),
      switchTo: () => {
        if (this.#stopping) throw new HitlessError('ERR_STOPPING', 'the master began stopping during the reload');
        this.#serve(next);
        run.to('switched');
        this.#emit({ type: 'reload-ready', generation: next.id, ms: this.#host.now() - startedAt });
      },
      retire: async (workers, to) => {
        await this.#retire(workers, to, run);
      },
      discard: (workers) => this.#discard(workers),
      refill: (gen, slot) => {
        // A put-back worker that crashed on its own was already scheduled (onCrash).
        if (!gen.restartTimers.has(slot) && gen.workers[slot] === undefined) this.#scheduleRestart(gen, slot, 0);
      },
      now: () => this.#host.now(),
      wait: (ms) => {
        let timer: { cancel(): void } | undefined;
        const elapsed = new Promise<void>((resolve) => (timer = this.#host.setTimer(resolve, ms)));
        return this.#raceStop(Promise.race([elapsed, died])).finally(() => timer?.cancel());
      },
      traffic: this.#traffic,
      report: (r) => {
        if (r.verdict !== 'pending') verdict = r;
        this.#emit({ type: r.verdict === 'pending' ? 'canary-progress' : 'canary-verdict', ...r });
      },
    };
    let outcome: ReloadOutcome;
    try {
      await strategy.run(ctx);
      run.to('done');
      const c = run.counts;
      const warnings = this.#warnings(next);
      for (const text of warnings) this.#emit({ type: 'warning', generation: next.id, text });
      outcome = {
        ok: true, generation: next.id, attempted: next.id, reason, startedAt,
        durationMs: this.#host.now() - startedAt, forced: c.forced,
        connections: { handedOver: c.handedOver, returned: c.returned, lost: c.lost, drained: c.drained, cut: c.cut },
        ...(verdict ? { canary: verdict } : {}),
        ...(warnings.length ? { warnings } : {}),
      };
    } catch (err) {
      // Whatever the strategy left of `next` goes now; `old` keeps serving.
      await this.#discard(next.live());
      if (!run.finished) run.to('failed');
      if (this.#state === 'reloading') this.#state = 'running';
      outcome = this.#failure(reason, startedAt, this.#current, next.id, err);
      if (verdict) outcome.canary = verdict;
    }
    if (this.#state === 'reloading') this.#state = 'running';
    this.#finish(outcome);
    resolveDone(outcome);
    return outcome;
  }

  #finish(outcome: ReloadOutcome): ReloadOutcome {
    this.#lastReload = outcome;
    // Bounded series: the serving release and the most recent other one (traffic.ts).
    if (this.#current) this.#traffic.releases(releaseKey(this.#current.id, this.#current.release));
    this.#emit({ type: 'reload-done', outcome });
    return outcome;
  }

  #failure(reason: string, startedAt: number, serving: Generation | undefined, attempted: number, err: unknown): ReloadOutcome {
    const e = isHitlessError(err) ? err : new HitlessError('ERR_RELOAD_FAILED', String(err), { cause: err });
    const output = Array.isArray(e.details.output) ? (e.details.output as string[]) : [];
    return {
      ok: false, generation: serving?.id ?? 0, attempted, reason, startedAt,
      durationMs: this.#host.now() - startedAt, forced: 0,
      error: { code: e.code, message: e.message, output },
    };
  }

  #raceStop<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.#stopGate.promise]);
  }

  #diedAfterReady(workers: Worker[]): HitlessError {
    const w = workers.find((x) => x.exitInfo !== undefined) ?? workers[0];
    const how = w?.exitInfo?.signal ? `was killed by ${w.exitInfo.signal}` : `exited with code ${String(w?.exitInfo?.code)}`;
    return new HitlessError('ERR_WORKER_EXITED', `worker ${w?.label ?? ''} ${how} after it was ready, before the new generation went live`, {
      details: { output: w?.output ?? [] },
    });
  }

  /** What to check about `gen`'s sockets, judged from its ready workers' hello (listening.ts). */
  #warnings(gen: Generation): string[] {
    return listenerWarnings(gen.id, gen.spec, gen.live().filter((w) => w.readyAt !== undefined).map((w) => w.hello));
  }

  /** Makes `gen` the serving generation. */
  #serve(gen: Generation): void {
    this.#current = gen;
  }

  /**
   * Stops `workers` and waits for them: with hand-over to `to` where both sides speak the
   * channel, else their stop signal; SIGKILL at drainTimeout. Adds to `run`'s counts.
   */
  async #retire(workers: Worker[], to: Generation | undefined, run: ReloadRun | undefined): Promise<number> {
    if (workers.length === 0) return 0;
    const gen = workers[0]?.generation ?? 0;
    const timeout = workers[0]?.spec.drainTimeout ?? this.#drainTimeout();
    const targets = (): Worker[] => (to ? to.live().filter((w) => w.acceptsConnections) : []);
    const handover = to !== undefined && (to.spec.handover && targets().length > 0);
    const broker = new HandoverBroker(targets);
    const startedAt = this.#host.now();
    if (run) run.to(handover ? 'handover' : 'draining');
    this.#emit({ type: 'reload-draining', generation: gen, workers: workers.length });
    // What each old worker says its own drain did: closed gracefully, or cut at its deadline.
    const drained = new Map<Worker, { drained: number; forced: number }>();
    /** When an old worker last handed a connection over (the drain deadline counts from it). */
    let progressAt = -Infinity;
    const onMessage = (w: Worker) => (m: { type: string; drained?: number; forced?: number }) => {
      if (m.type === 'drained') drained.set(w, { drained: m.drained ?? 0, forced: m.forced ?? 0 });
      if (m.type === 'conn') progressAt = this.#host.now();
    };
    const listeners = workers.map((w) => {
      const fn = onMessage(w);
      w.on('message', fn);
      return () => w.off('message', fn);
    });
    // Each old worker may have this many connections waiting in the master for a new worker:
    // enough to keep every receiver busy, few enough that the rest wait in the old worker,
    // which still serves their requests (a connection queued here is read by nobody).
    const window = HANDOVER_WINDOW_PER_RECEIVER * Math.max(1, targets().length);
    for (const w of workers) {
      if (handover && w.hello !== undefined) this.#brokers.set(w, broker);
      w.stop(handover, window);
    }
    const forced = await this.#drain(workers, timeout, () => progressAt);
    for (const off of listeners) off();
    for (const w of workers) this.#brokers.delete(w);
    // An old worker exits once the master has its descriptors; wait until they all landed.
    await broker.settled();
    const counts = broker.counts;
    const drainedConnections = [...drained.values()].reduce((a, b) => a + b.drained, 0);
    const cut = [...drained.values()].reduce((a, b) => a + b.forced, 0);
    if (run) {
      run.counts.forced += forced;
      run.counts.handedOver += counts.handedOver;
      run.counts.returned += counts.returned;
      run.counts.lost += counts.lost;
      run.counts.drained += drainedConnections;
      run.counts.cut += cut;
      if (run.phase === 'handover') run.to('draining');
    }
    this.#emit({
      type: 'reload-drained', generation: gen, forced, ms: this.#host.now() - startedAt,
      handedOver: counts.handedOver, returned: counts.returned, lost: counts.lost, drained: drainedConnections, cut,
    });
    return forced;
  }

  /** Kills `workers` at once and waits for their exit. */
  async #discard(workers: Worker[]): Promise<void> {
    for (const w of workers) w.kill();
    await Promise.all(workers.map((w) => w.exited));
  }

  /**
   * Waits up to `timeout` for `workers` to exit, then SIGKILLs the rest; resolves with how
   * many were forced. With `progressAt` (when the workers last handed a connection over), the
   * deadline counts from that progress instead: a hand-over that keeps moving connections
   * on a slow machine takes longer, it is not cut (a stuck one still is, `timeout` after it
   * stopped moving).
   */
  async #drain(workers: Worker[], timeout: number, progressAt: () => number = () => -Infinity): Promise<number> {
    if (workers.length === 0) return 0;
    const all = Promise.all(workers.map((w) => w.exited));
    let timer: { cancel(): void } | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      const arm = (ms: number): void => {
        timer = this.#host.setTimer(() => {
          const more = progressAt() + timeout - this.#host.now();
          if (more > 0) arm(more);
          else resolve('deadline');
        }, ms);
      };
      arm(timeout);
    });
    const first = await Promise.race([all, deadline]);
    timer?.cancel();
    if (first !== 'deadline') return 0;
    const forced = workers.filter((w) => w.kill()).length;
    await all;
    return forced;
  }

  #newGeneration(spec: GenerationSpec): Generation {
    this.#latest = new Generation(this.#nextId++, spec);
    return this.#latest;
  }

  #spawn(gen: Generation, slot: number, restarts: number): Worker {
    const w = new Worker(this.#host, gen.spec, gen.id, slot, restarts);
    gen.workers[slot] = w;
    gen.failed.delete(slot);
    this.#alive.add(w);
    this.#emit({ type: 'worker-spawn', generation: gen.id, slot, pid: w.pid });
    w.on('ready', () => {
      this.#emit({ type: 'worker-ready', generation: gen.id, slot, pid: w.pid ?? 0, ms: this.#host.now() - w.startedAt });
    });
    w.on('status', (text) => this.#emit({ type: 'worker-status', generation: gen.id, slot, text }));
    w.on('output', (stream, line) => this.#emit({ type: 'worker-output', generation: gen.id, slot, stream, line }));
    w.on('message', (m, handle) => {
      if (m.type === 'stats') {
        const meta = { generation: gen.id, release: releaseKey(gen.id, gen.release), startedAt: w.startedAt };
        this.#traffic.record(this.#trafficId(w), meta, this.#host.now(), countsOf(m));
        return;
      }
      if (m.type !== 'conn' || handle == null) return;
      // A connection handed over by a retiring worker; one sent out of turn goes back to it.
      const broker = this.#brokers.get(w) ?? new HandoverBroker(() => []);
      // Once it landed (handed over, returned or lost), the old worker may send the next one.
      void broker.forward(w, m.listener, handle).then(() => w.send({ hitless: PROTOCOL, type: 'landed' }));
    });
    w.on('exit', ({ code, signal }) => {
      this.#alive.delete(w);
      this.#traffic.exited(this.#trafficId(w), this.#host.now());
      this.#emit({ type: 'worker-exit', generation: gen.id, slot, pid: w.pid, code, signal, planned: w.planned });
      this.#onCrash(gen, w);
    });
    return w;
  }

  /** A worker of the serving generation exited without being asked: restart it with backoff. */
  #onCrash(gen: Generation, w: Worker): void {
    if (w.planned || this.#stopping || gen !== this.#current || gen.workers[w.slot] !== w || this.#joining.has(w)) return;
    gen.workers[w.slot] = undefined;
    this.#scheduleRestart(gen, w.slot, w.restarts, w);
  }

  #scheduleRestart(gen: Generation, slot: number, restarts: number, crashed?: Worker): void {
    const delay = gen.recordCrash(slot, this.#host.now(), gen.spec.restart);
    if (delay === undefined) {
      const last = crashed?.snapshot();
      if (last) gen.failed.set(slot, { ...last, pid: undefined, state: 'failed' });
      this.#emit({ type: 'slot-failed', generation: gen.id, slot, restarts });
      return;
    }
    this.#emit({ type: 'worker-restart', generation: gen.id, slot, attempt: restarts + 1, delayMs: delay });
    gen.restartTimers.get(slot)?.cancel();
    const timer = this.#host.setTimer(() => {
      gen.restartTimers.delete(slot);
      if (this.#stopping || gen !== this.#current || gen.workers[slot] !== undefined || slot >= gen.size) return;
      const next = this.#spawn(gen, slot, restarts + 1);
      // Not gated: the slot is empty anyway. A replacement that never gets ready is visible in status.
      next.waitReady(gen.spec.readyTimeout).catch(() => {});
    }, delay);
    gen.restartTimers.set(slot, timer);
  }
}
