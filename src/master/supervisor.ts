/**
 * The one owner of supervisor state (tableflip's upgrader.go): generations, workers,
 * the reload queue and crash restarts. Everything else (signals, the control socket,
 * watch and fetch triggers) reaches it through reload() / stop() / status().
 *
 * Reload: spawn generation n+1 on the same sockets, wait until every new worker is
 * READY, then stop generation n and SIGKILL what outlives drainTimeout. If the new
 * generation fails, it is killed and generation n keeps serving: nothing was dropped,
 * because both generations accept from the same kernel queue.
 */
import { EventEmitter } from 'node:events';
import { HitlessError, isHitlessError } from '../errors.js';
import { createProcStatReader } from '../ops/procstat.js';
import { Generation } from './generation.js';
import { resolveWorkdir } from './workdir.js';
import { Worker, type WorkerSpec } from './worker.js';
import { preloadEnv } from './preload-env.js';
import type { ListenerSet } from './listeners.js';
import type { MasterConfig, MasterEvent, MasterHandle, ReloadOutcome, StatusSnapshot, WorkerStatus } from './types.js';

export interface SupervisorOptions {
  config: MasterConfig;
  listeners: ListenerSet;
  version: string;
  /** Give workers a parent-death signal through setpriv (when it is installed). */
  pdeathsig: boolean;
  /** Applied to every worker (privilege drop). */
  uid?: number | undefined;
  gid?: number | undefined;
  /** Extra environment for workers (HOME/USER after a privilege drop). */
  env?: Record<string, string>;
}

interface Queued {
  reason: string;
  promise: Promise<ReloadOutcome>;
  resolve: (o: ReloadOutcome) => void;
}

export class Supervisor extends EventEmitter implements MasterHandle {
  private readonly opts: SupervisorOptions;
  private readonly config: MasterConfig;
  private readonly startedAt = Date.now();
  private state: StatusSnapshot['state'] = 'starting';
  private current: Generation | undefined;
  private nextGeneration = 1;
  /** Every worker process still alive, whatever its generation or state. */
  private readonly alive = new Set<Worker>();
  private inFlight: Promise<ReloadOutcome> | undefined;
  private queued: Queued | undefined;
  private lastReload: ReloadOutcome | undefined;
  private stopping: Promise<void> | undefined;
  private readProcStats: ReturnType<typeof createProcStatReader> | undefined;
  private resolveStopped: () => void = () => {};
  /** Resolves once a stop (graceful or forced) has finished and no worker is left. */
  readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));

  constructor(opts: SupervisorOptions) {
    super();
    this.opts = opts;
    this.config = opts.config;
  }

  /** Starts generation 1 and resolves when all its workers are ready; throws ERR_START_FAILED. */
  async start(): Promise<void> {
    const gen = this.newGeneration();
    try {
      await this.startGeneration(gen);
    } catch (err) {
      const e = err instanceof HitlessError ? err : undefined;
      throw new HitlessError('ERR_START_FAILED', `the first generation did not start: ${e?.message ?? String(err)}`, {
        cause: err,
        details: { output: e?.details.output ?? [] },
      });
    }
    this.current = gen;
    if (this.state === 'starting') this.state = 'running';
    this.pump();
  }

  reload(reason: string): Promise<ReloadOutcome> {
    if (this.stopping) return Promise.resolve(this.refused(reason));
    if (this.queued) {
      this.emitEvent({ type: 'reload-queued', reason });
      return this.queued.promise.then((o) => ({ ...o, coalesced: true }));
    }
    if (!this.inFlight && this.state === 'running') {
      this.inFlight = this.runReload(reason);
      void this.inFlight.then(() => this.pump());
      return this.inFlight;
    }
    let resolve: (o: ReloadOutcome) => void = () => {};
    const promise = new Promise<ReloadOutcome>((r) => (resolve = r));
    this.queued = { reason, promise, resolve };
    this.emitEvent({ type: 'reload-queued', reason });
    return promise;
  }

  stop(force = false): Promise<void> {
    if (this.stopping) {
      if (force) for (const w of this.alive) w.kill();
      return this.stopping;
    }
    this.state = 'stopping';
    this.current?.cancelRestarts();
    const queued = this.queued;
    this.queued = undefined;
    queued?.resolve(this.refused(queued.reason));
    this.stopping = (async () => {
      const workers = [...this.alive];
      for (const w of workers) (force ? w.kill() : w.stop());
      await this.drain(workers);
      // A reload in flight may still be spawning: wait for it to give up, then drain stragglers.
      await this.inFlight;
      const stragglers = [...this.alive];
      for (const w of stragglers) (force ? w.kill() : w.stop());
      await this.drain(stragglers);
      this.emitEvent({ type: 'master-stop', reason: force ? 'forced' : 'graceful' });
      this.resolveStopped();
    })();
    return this.stopping;
  }

  status(): StatusSnapshot {
    const workers: WorkerStatus[] = [...this.alive].map((w) => w.snapshot());
    this.readProcStats ??= createProcStatReader();
    const usage = this.readProcStats(workers.flatMap((w) => (w.pid === undefined ? [] : [w.pid])));
    for (const w of workers) Object.assign(w, w.pid === undefined ? {} : usage.get(w.pid));
    for (const failed of this.current?.failed.values() ?? []) workers.push(failed);
    workers.sort((a, b) => a.generation - b.generation || a.slot - b.slot);
    const { rss, heapUsed } = process.memoryUsage();
    return {
      version: this.opts.version,
      pid: process.pid,
      startedAt: this.startedAt,
      uptimeMs: Date.now() - this.startedAt,
      state: this.state,
      generation: this.current?.id ?? 0,
      release: this.current?.release,
      listeners: this.opts.listeners.status(),
      workers,
      lastReload: this.lastReload,
      reloadQueued: this.queued !== undefined,
      memory: { rssBytes: rss, heapUsedBytes: heapUsed },
    };
  }

  private emitEvent(e: MasterEvent): void {
    this.emit('event', e);
  }

  /** Starts the queued reload, if any, once nothing else runs. */
  private pump(): void {
    this.inFlight = undefined;
    const next = this.queued;
    if (!next || this.state !== 'running') return;
    this.queued = undefined;
    this.inFlight = this.runReload(next.reason);
    void this.inFlight.then((o) => {
      next.resolve(o);
      this.pump();
    });
  }

  private refused(reason: string): ReloadOutcome {
    const gen = this.current?.id ?? 0;
    const message = 'the master is stopping; no reload';
    return {
      ok: false, generation: gen, attempted: gen, reason, startedAt: Date.now(), durationMs: 0, forced: 0,
      error: { code: 'ERR_STOPPING', message, output: [] },
    };
  }

  private async runReload(reason: string): Promise<ReloadOutcome> {
    const startedAt = Date.now();
    const old = this.current;
    this.state = 'reloading';
    const gen = this.newGeneration();
    this.emitEvent({ type: 'reload-start', generation: gen.id, reason });
    let outcome: ReloadOutcome;
    try {
      let forced = 0;
      if (this.config.strategy === 'rolling' && old) {
        forced = await this.roll(gen, old);
        this.emitEvent({ type: 'reload-ready', generation: gen.id, ms: Date.now() - startedAt });
        this.serve(gen);
        forced += await this.retire(old);
      } else {
        await this.startGeneration(gen);
        this.emitEvent({ type: 'reload-ready', generation: gen.id, ms: Date.now() - startedAt });
        if (this.stopping) throw new HitlessError('ERR_STOPPING', 'the master began stopping during the reload');
        this.serve(gen);
        forced = old ? await this.retire(old) : 0;
      }
      outcome = { ok: true, generation: gen.id, attempted: gen.id, reason, startedAt, durationMs: Date.now() - startedAt, forced };
    } catch (err) {
      const e = isHitlessError(err) ? err : new HitlessError('ERR_RELOAD_FAILED', String(err), { cause: err });
      const output = Array.isArray(e.details.output) ? (e.details.output as string[]) : [];
      outcome = {
        ok: false, generation: old?.id ?? 0, attempted: gen.id, reason, startedAt,
        durationMs: Date.now() - startedAt, forced: 0,
        error: { code: e.code, message: e.message, output },
      };
      if (this.state === 'reloading') this.state = 'running';
    }
    this.lastReload = outcome;
    this.emitEvent({ type: 'reload-done', outcome });
    return outcome;
  }

  /**
   * Makes `gen` the serving generation. A worker of it that died after its READY, while
   * it was not yet serving, is restarted now like any crash of the serving generation.
   */
  private serve(gen: Generation): void {
    this.current = gen;
    this.state = 'running';
    for (const w of gen.live()) if (w.exitInfo) this.onCrash(gen, w);
  }

  /** Stops a generation that no longer serves; resolves with how many workers were forced. */
  private async retire(gen: Generation): Promise<number> {
    gen.cancelRestarts();
    const workers = gen.live();
    const startedAt = Date.now();
    this.emitEvent({ type: 'reload-draining', generation: gen.id, workers: workers.length });
    for (const w of workers) w.stop();
    const forced = await this.drain(workers);
    this.emitEvent({ type: 'reload-drained', generation: gen.id, forced, ms: Date.now() - startedAt });
    return forced;
  }

  /** Waits up to drainTimeout for `workers` to exit, then SIGKILLs the rest. */
  private async drain(workers: Worker[]): Promise<number> {
    const all = Promise.all(workers.map((w) => w.exited));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), this.config.drainTimeout);
    });
    const first = await Promise.race([all, deadline]);
    clearTimeout(timer);
    if (first !== 'deadline') return 0;
    const forced = workers.filter((w) => w.kill()).length;
    await all;
    return forced;
  }

  /**
   * Rolling: one slot at a time, start the new worker, wait for READY, then drain the old
   * worker of that slot before the next (at most N+1 workers alive). If a new worker
   * fails, the slots already replaced get the old version back before the new workers
   * stop, so the old generation ends up whole. Resolves with how many were forced.
   */
  private async roll(gen: Generation, old: Generation): Promise<number> {
    let forced = 0;
    for (let slot = 0; slot < gen.size; slot++) {
      const w = this.spawn(gen, slot, 0);
      try {
        await w.waitReady(this.config.readyTimeout);
        if (this.stopping) throw new HitlessError('ERR_STOPPING', 'the master began stopping during the reload');
      } catch (err) {
        w.kill();
        await w.exited;
        await this.unroll(gen, old, slot);
        throw err;
      }
      const prev = old.workers[slot];
      old.workers[slot] = undefined;
      if (prev) {
        prev.stop();
        forced += await this.drain([prev]);
      }
    }
    return forced;
  }

  /** Puts the old version back into slots [0, upTo) and stops the new workers there. */
  private async unroll(gen: Generation, old: Generation, upTo: number): Promise<void> {
    for (let slot = 0; slot < upTo; slot++) {
      const back = this.spawn(old, slot, 0);
      const ok = await back.waitReady(this.config.readyTimeout).then(() => true, () => false);
      if (!ok) continue; // keep the new worker rather than leave the slot empty
      const replaced = gen.workers[slot];
      if (replaced) {
        replaced.stop();
        await this.drain([replaced]);
      }
    }
  }

  /** Spawns every slot and waits for all to be READY; on any failure kills them all and throws. */
  private async startGeneration(gen: Generation): Promise<void> {
    const workers = gen.workers.map((_, slot) => this.spawn(gen, slot, 0));
    const results = await Promise.allSettled(workers.map((w) => w.waitReady(this.config.readyTimeout)));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // A worker may have announced READY and died while its siblings were still starting.
    const died = workers.find((w) => w.exitInfo !== undefined);
    if (!failure && !died) return;
    for (const w of workers) w.kill();
    await Promise.all(workers.map((w) => w.exited));
    throw failure?.reason ?? new HitlessError('ERR_WORKER_EXITED', `worker ${died?.label ?? ''} exited right after it was ready`, {
      details: { output: died?.output ?? [] },
    });
  }

  private newGeneration(): Generation {
    const { cwd, release } = resolveWorkdir(this.config);
    return new Generation(this.nextGeneration++, this.config.workers, cwd, release);
  }

  private spawn(gen: Generation, slot: number, restarts: number): Worker {
    const env = { ...process.env, ...this.opts.env, ...this.config.env };
    const spec: WorkerSpec = {
      generation: gen.id,
      slot,
      restarts,
      command: this.config.command,
      cwd: gen.cwd,
      env: { ...env, ...preloadEnv(env, this.opts.listeners.status(), this.config.preload !== false) },
      release: gen.release,
      fds: this.opts.listeners.fds,
      fdNames: this.opts.listeners.names,
      stopSignal: this.config.stopSignal,
      readyAfter: this.config.readyAfter,
      pdeathsig: this.opts.pdeathsig,
      uid: this.opts.uid,
      gid: this.opts.gid,
    };
    const w = new Worker(spec);
    gen.workers[slot] = w;
    this.alive.add(w);
    this.emitEvent({ type: 'worker-spawn', generation: gen.id, slot, pid: w.pid });
    w.on('ready', () => {
      this.emitEvent({ type: 'worker-ready', generation: gen.id, slot, pid: w.pid ?? 0, ms: Date.now() - w.startedAt });
    });
    w.on('status', (text) => this.emitEvent({ type: 'worker-status', generation: gen.id, slot, text }));
    w.on('output', (stream, line) => this.emitEvent({ type: 'worker-output', generation: gen.id, slot, stream, line }));
    w.on('exit', ({ code, signal }) => {
      this.alive.delete(w);
      this.emitEvent({ type: 'worker-exit', generation: gen.id, slot, pid: w.pid, code, signal, planned: w.planned });
      this.onCrash(gen, w);
    });
    return w;
  }

  /** A worker of the serving generation exited without being asked: restart it with backoff. */
  private onCrash(gen: Generation, w: Worker): void {
    if (w.planned || this.stopping || gen !== this.current || gen.workers[w.slot] !== w) return;
    gen.workers[w.slot] = undefined;
    const delay = gen.recordCrash(w.slot, Date.now(), this.config.restart);
    if (delay === undefined) {
      gen.failed.set(w.slot, { ...w.snapshot(), pid: undefined, state: 'failed' });
      this.emitEvent({ type: 'slot-failed', generation: gen.id, slot: w.slot, restarts: w.restarts });
      return;
    }
    this.emitEvent({ type: 'worker-restart', generation: gen.id, slot: w.slot, attempt: w.restarts + 1, delayMs: delay });
    const timer = setTimeout(() => {
      gen.restartTimers.delete(w.slot);
      if (this.stopping || gen !== this.current) return;
      const next = this.spawn(gen, w.slot, w.restarts + 1);
      // Not gated: the slot is empty anyway. A replacement that never gets ready is visible in status.
      next.waitReady(this.config.readyTimeout).catch(() => {});
    }, delay);
    gen.restartTimers.set(w.slot, timer);
  }
}
