/**
 * The retirements under way (retire.ts), for status, for the stop, and for the bound on old
 * generations draining in the background (issue 24).
 *
 * A reload need not wait until its old generation's long-lived connections (WebSockets) are
 * gone: once its retirement is released, the reload is done and the retirement drains on in
 * the background, each with its own deadline, as HAProxy's old processes do. Several may
 * coexist, but not without limit (each holds processes and memory): when one more
 * generation would drain in the background than `drain.maxGenerations`, the oldest is
 * stopped at once (SIGKILL; what it still held is cut, counted as forced).
 */
import { addRetireCounts, zeroRetireCounts, type RetireCounts, type Retirement, type StillDraining } from './retire.js';
import type { DrainingGeneration } from './types.js';

interface Entry {
  retirement: Retirement;
  /** True once its reload stopped waiting for it. */
  background: boolean;
  /** Resolves when the retirement ended (its counts reported). */
  ended: Promise<void>;
  /** Its final counts. */
  counts: Promise<RetireCounts>;
}

/** What each generation still draining now adds from here on (see {@link DrainingGenerations.rest}). */
export interface DrainRest {
  /** The generations waited for, oldest first (empty: none was draining). */
  generations: number[];
  /** What they did after their release (what their reload already counted is left out), summed. */
  counts: RetireCounts;
}

/**
 * Every retirement under way, foreground (its reload waits) or background.
 *
 * @example
 * const draining = new DrainingGenerations();
 * draining.add(retirement, ended);
 * const released = await retirement.released;
 * const stopped = draining.background(retirement, spec.drain.maxGenerations); // generations stopped at the bound
 */
export class DrainingGenerations {
  readonly #entries = new Set<Entry>();

  /** Tracks `retirement` until `ended` resolves with its final counts. */
  add(retirement: Retirement, ended: Promise<RetireCounts>): void {
    const entry: Entry = { retirement, background: false, ended: Promise.resolve(), counts: ended };
    entry.ended = ended.then(
      () => void this.#entries.delete(entry),
      () => void this.#entries.delete(entry),
    );
    this.#entries.add(entry);
  }

  /**
   * The reload no longer waits for `retirement`: it drains in the background. Returns the
   * generations stopped at once because more than `max` generations would drain in the
   * background (oldest first).
   */
  background(retirement: Retirement, max: number): number[] {
    const entry = [...this.#entries].find((e) => e.retirement === retirement);
    if (entry === undefined || retirement.ended) return [];
    entry.background = true;
    const stopped: number[] = [];
    for (;;) {
      const generations = [...new Set([...this.#entries].filter((e) => e.background && !e.retirement.ended).map((e) => e.retirement.generation))].sort((a, b) => a - b);
      if (generations.length <= max) return stopped;
      const oldest = generations[0] as number;
      for (const e of this.#entries) if (e.retirement.generation === oldest) e.retirement.force();
      // Killed workers exit asynchronously: count the generation as gone from here on.
      for (const e of this.#entries) if (e.retirement.generation === oldest) e.background = false;
      stopped.push(oldest);
    }
  }

  /** Resolves once every retirement under way now has ended. */
  async settled(): Promise<void> {
    while (this.#entries.size > 0) await Promise.all([...this.#entries].map((e) => e.ended));
  }

  /**
   * Waits for every retirement under way now to end; resolves with their generations and
   * what they did after their release, summed: the workers forced at their deadline and the
   * connections cut then are in no reload's outcome (the reload was done at the release).
   * An upgrade's outcome adds them (supervisor.ts handOff).
   */
  async rest(): Promise<DrainRest> {
    const entries = [...this.#entries];
    const generations = [...new Set(entries.map((e) => e.retirement.generation))].sort((a, b) => a - b);
    const each = await Promise.all(entries.map(async (e) => {
      const [release, end] = await Promise.all([e.retirement.released, e.counts.catch(zeroRetireCounts)]);
      return after(end, release.counts);
    }));
    return { generations, counts: each.reduce(addRetireCounts, zeroRetireCounts()) };
  }

  /** Each generation with a retirement under way, oldest first, with what its live workers hold. */
  snapshot(): DrainingGeneration[] {
    const byGeneration = new Map<number, DrainingGeneration>();
    for (const { retirement: r, background } of this.#entries) {
      const still = r.still();
      if (still.length === 0) continue;
      const g = byGeneration.get(r.generation) ?? {
        generation: r.generation, background, since: r.startedAt, deadline: r.deadline, workers: [], upgraded: 0, requests: 0, connections: 0, unknown: 0,
      };
      g.background &&= background;
      g.since = Math.min(g.since, r.startedAt);
      g.deadline = Math.max(g.deadline, r.deadline);
      if (r.reloadWaitReached !== undefined) g.reloadWait = r.reloadWaitReached;
      g.workers.push(...still);
      byGeneration.set(r.generation, g);
    }
    // What they hold, summed once over all the workers of each generation.
    return [...byGeneration.values()].map((g) => ({ ...g, ...held(g.workers) })).sort((a, b) => a.generation - b.generation);
  }
}

/** `end` less `before`, per count (never below 0). */
function after(end: RetireCounts, before: RetireCounts): RetireCounts {
  const d = zeroRetireCounts();
  for (const k of Object.keys(d) as (keyof RetireCounts)[]) d[k] = Math.max(0, end[k] - before[k]);
  return d;
}

/** What retiring workers still hold, summed: upgraded connections (said `lingering`), else requests in flight and connections open (traffic reports), else unknown. */
export function held(still: readonly StillDraining[]): { upgraded: number; requests: number; connections: number; unknown: number } {
  const sum = { upgraded: 0, requests: 0, connections: 0, unknown: 0 };
  for (const w of still) {
    if (w.upgraded !== undefined) sum.upgraded += w.upgraded;
    else if (w.requests !== undefined) {
      sum.requests += w.requests;
      sum.connections += w.connections ?? 0;
    } else sum.unknown++;
  }
  return sum;
}
