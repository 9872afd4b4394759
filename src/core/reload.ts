/**
 * One reload, as named phases. The supervisor creates a ReloadRun per reload; the strategy
 * (strategies/*.ts) moves it through its phases; every transition is a `reload-phase`
 * event, and a transition the table below does not allow is a bug, so it throws.
 *
 *   spawning → [canary →] ready → switched → handover → draining → [settling →] done
 *        ↘                  ↘         ↘          ↘          ↘             ↘
 *                                         failed
 *
 * `rolling` passes through handover/draining once per slot before `switched` (each old
 * worker is retired as soon as its replacement is ready), so those phases may also follow
 * `spawning` and lead back to it. `canary` sits between `spawning` (its first workers) and
 * the rest: `spawning` again for the other workers, `ready` when the canary is the whole
 * generation, or handover/draining to retire the canary (failed) or old slots (rolling).
 * `ready` leads to handover/draining when the switch is refused (a worker of a canary that
 * is the whole generation died unseen before it: the others go back out, as a failed canary).
 * A reload fails after `switched` too: a new worker died after going live, before the
 * reload was done, and the supervisor rolled back to the old generation's version.
 * `settling` is that window's end: once the strategy is through (the old generation drained
 * or draining in the background), the reload waits until every new worker has been ready
 * for its spec's `stayReady` (config key, default 1 s: DEFAULT_STAY_READY_MS), when one got
 * ready less than that ago (report h21 F1: an old
 * generation that drains in milliseconds left a version that exits right after READY no
 * time to be caught).
 */
import { addRetireCounts, zeroRetireCounts, type RetireCounts, type Retirement } from './retire.js';
import type { ReloadPhase } from './types.js';

/** What a phase's event carries beside the phase. */
export interface PhaseDetail {
  /** `settling`: how long (ms) every new worker must have been ready, the `stayReady` in force. */
  settleMs?: number;
}

const NEXT: Record<ReloadPhase, readonly ReloadPhase[]> = {
  spawning: ['canary', 'ready', 'handover', 'draining', 'failed'],
  canary: ['spawning', 'ready', 'handover', 'draining', 'failed'],
  ready: ['switched', 'spawning', 'handover', 'draining', 'failed'],
  switched: ['handover', 'draining', 'settling', 'done', 'failed'],
  handover: ['draining', 'spawning', 'settling', 'done', 'failed'],
  draining: ['spawning', 'settling', 'done', 'failed', 'handover'],
  settling: ['done', 'failed'],
  done: [],
  failed: [],
};

export class ReloadRun {
  readonly generation: number;
  readonly reason: string;
  readonly startedAt: number;
  /** What its retirements did, added up (the outcome's `forced` and `connections`). */
  readonly counts: RetireCounts = zeroRetireCounts();
  /** Its retirements the reload stopped waiting for (they drain on in the background). */
  readonly lingering: Retirement[] = [];
  /** How many retirements added their counts. */
  retirements = 0;
  #phase: ReloadPhase = 'spawning';
  readonly #onPhase: (phase: ReloadPhase, detail: PhaseDetail) => void;

  constructor(generation: number, reason: string, startedAt: number, onPhase: (phase: ReloadPhase, detail: PhaseDetail) => void) {
    this.generation = generation;
    this.reason = reason;
    this.startedAt = startedAt;
    this.#onPhase = onPhase;
  }

  get phase(): ReloadPhase {
    return this.#phase;
  }

  get finished(): boolean {
    return this.#phase === 'done' || this.#phase === 'failed';
  }

  /** Adds one retirement's counts. */
  add(c: RetireCounts): void {
    this.retirements++;
    addRetireCounts(this.counts, c);
  }

  /** What its background retirements still hold now (undefined: nothing, they have ended). */
  stillDraining(): { workers: number; upgraded: number } | undefined {
    const still = this.lingering.flatMap((r) => r.still());
    if (still.length === 0) return undefined;
    return { workers: still.length, upgraded: still.reduce((n, w) => n + (w.upgraded ?? 0), 0) };
  }

  /** Moves to `phase`; `detail` goes on its event (`settleMs`: the stay-ready time `settling` waits out). */
  to(phase: ReloadPhase, detail: PhaseDetail = {}): void {
    if (phase === this.#phase) return;
    if (!NEXT[this.#phase].includes(phase)) throw new Error(`reload ${this.generation}: no transition ${this.#phase} → ${phase}`);
    this.#phase = phase;
    this.#onPhase(phase, detail);
  }
}
