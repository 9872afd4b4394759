/**
 * Progress while workers start: every few seconds, one `ready-wait` event per generation
 * naming its workers not ready yet (pid, how long, last STATUS= line). Without it a
 * never-ready app meant readyTimeout (30 s) of silence before the failure (issue 19).
 *
 * Driven by the master's events alone (worker-spawn, -ready, -status, -exit): it never
 * asks for the status, which would read /proc for every worker and move the CPU figures
 * `hitless status` computes between two calls.
 */
import type { MasterEvent } from '../core/types.js';

/** How often a generation whose workers are still starting is reported. */
export const READY_WAIT_INTERVAL_MS = 5000;

interface Waiting {
  pid: number | undefined;
  since: number;
  status?: string;
}

interface GenerationWait {
  since: number;
  next: number;
  workers: Map<number, Waiting>;
}

type ReadyWaitEvent = Extract<MasterEvent, { type: 'ready-wait' }>;

export interface ReadyWatchOptions {
  /** Where its reports go: the supervisor, the one writer of events (`readyWaiting`). */
  emit: (e: ReadyWaitEvent) => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  intervalMs?: number;
}

const realTimer = (fn: () => void, ms: number): { cancel(): void } => {
  const t = setTimeout(fn, ms);
  t.unref();
  return { cancel: () => clearTimeout(t) };
};

/**
 * Feed it every master event (`onEvent`); it emits `ready-wait` events through `emit`.
 *
 * @example
 * const watch = new ReadyWatch({ emit: (e) => supervisor.readyWaiting(e) });
 * supervisor.on('event', (e) => watch.onEvent(e));
 */
export class ReadyWatch {
  readonly #emit: (e: ReadyWaitEvent) => void;
  readonly #now: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => { cancel(): void };
  readonly #interval: number;
  readonly #gens = new Map<number, GenerationWait>();
  #timer: { cancel(): void } | undefined;

  constructor(o: ReadyWatchOptions) {
    this.#emit = o.emit;
    this.#now = o.now ?? Date.now;
    this.#setTimer = o.setTimer ?? realTimer;
    this.#interval = o.intervalMs ?? READY_WAIT_INTERVAL_MS;
  }

  onEvent(e: MasterEvent): void {
    switch (e.type) {
      case 'worker-spawn': {
        const now = this.#now();
        let gen = this.#gens.get(e.generation);
        if (gen === undefined) {
          gen = { since: now, next: now + this.#interval, workers: new Map() };
          this.#gens.set(e.generation, gen);
        }
        gen.workers.set(e.slot, { pid: e.pid, since: now });
        this.#schedule();
        return;
      }
      case 'worker-status': {
        const w = this.#gens.get(e.generation)?.workers.get(e.slot);
        if (w) w.status = e.text;
        return;
      }
      case 'worker-ready':
      case 'worker-exit':
        this.#done(e.generation, e.slot);
        return;
      case 'master-stop':
        this.close();
        return;
      default:
    }
  }

  /** Stops reporting (the master is stopping). */
  close(): void {
    this.#gens.clear();
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #done(generation: number, slot: number): void {
    const gen = this.#gens.get(generation);
    if (!gen) return;
    gen.workers.delete(slot);
    if (gen.workers.size === 0) this.#gens.delete(generation);
    if (this.#gens.size === 0) this.close();
  }

  #schedule(): void {
    this.#timer?.cancel();
    const next = Math.min(...[...this.#gens.values()].map((g) => g.next));
    if (!Number.isFinite(next)) return;
    this.#timer = this.#setTimer(() => this.#tick(), Math.max(0, next - this.#now()));
  }

  #tick(): void {
    const now = this.#now();
    for (const [generation, gen] of this.#gens) {
      if (gen.next > now) continue;
      this.#emit({
        type: 'ready-wait', generation, waitingMs: now - gen.since,
        workers: [...gen.workers].map(([slot, w]) => ({ slot, pid: w.pid, ms: now - w.since, ...(w.status === undefined ? {} : { status: w.status }) })),
      });
      while (gen.next <= now) gen.next += this.#interval;
    }
    this.#schedule();
  }
}
