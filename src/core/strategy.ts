/**
 * How a reload brings the next generation up and the serving one down. Each strategy is
 * its own module (strategies/*.ts) behind this interface; the supervisor gives it a
 * ReloadContext and never branches on the strategy's name.
 *
 * A strategy's contract: on success `next` serves (switchTo was called) and no worker of
 * `old` is left; on failure it throws, `old` serves whole (slots it could not put back are
 * refilled like crashed ones), and no worker of `next` is alive.
 */
import type { Generation } from './generation.js';
import type { Receiver } from './handover.js';
import type { ConnectionSplit, SplitAsk } from './split.js';
import type { TrafficBook } from './traffic.js';
import type { CanaryLend, CanaryReport, ReloadPhase } from './types.js';
import type { Worker } from './worker.js';

export interface ReloadContext {
  readonly old: Generation | undefined;
  readonly next: Generation;
  phase(phase: ReloadPhase): void;
  /**
   * The one start step (slots.ts): a worker in each of `slots` of `gen`, resolved once all
   * are ready. On failure — one exits or misses readyTimeout, a worker of `next` died
   * unasked meanwhile, the master began stopping — all of them are killed and the error
   * thrown.
   */
  start(gen: Generation, slots: readonly number[]): Promise<Worker[]>;
  /** Starts a worker in `slot` of `gen` without waiting (rolling puts an old worker back with it). */
  spawn(gen: Generation, slot: number): Worker;
  /**
   * Makes `next` the serving generation. Throws ERR_WORKER_EXITED, switching nothing, when a
   * worker of `next` died after its READY and no wait of the strategy saw it while `old` is
   * still whole (this reload retired none of its workers): the reload fails, `old` serves on.
   * After old workers were retired, such a death switches and is rolled back (diedLive).
   */
  switchTo(): void;
  /**
   * Stops `workers`, handing their keep-alive connections to the ready workers of `to`
   * where both sides can (`undefined`: drain only), waits for their exit, SIGKILLs what
   * outlives drainTimeout. `fullSpeed`: the hand-over is not paced (handoverSpread).
   */
  retire(workers: Worker[], to: Generation | undefined, options?: { fullSpeed?: boolean }): Promise<void>;
  /**
   * Starts moving a part (`ask`) of the kept-alive connections of `from` (serving workers
   * that said they can) to `to` while `from` keeps serving (split.ts); the caller ends it.
   */
  split(from: Worker[], to: () => Receiver[], ask: SplitAsk, within: number): ConnectionSplit;
  /**
   * Sends rejected `workers` away (slots.ts discard): their stop signal now, so what they
   * accepted before they were rejected is answered, SIGKILL after a short grace. Not awaited:
   * the supervisor keeps them until they exit.
   */
  discard(workers: Worker[]): void;
  /** Refills an empty slot of the serving generation with backoff, as after a crash. */
  refill(gen: Generation, slot: number): void;
  /** The host's clock (ms). */
  now(): number;
  /** Resolves after `ms` on the host's clock; rejects as ready() does (a worker of `next` died, the master is stopping). */
  wait(ms: number): Promise<void>;
  /** The traffic figures workers reported (read only). */
  readonly traffic: Pick<TrafficBook, 'total' | 'connections' | 'busy' | 'reportedAt' | 'reported'>;
  /** Responses worker `w` reported in all (0 before its first report). */
  served(w: Worker): number;
  /** Emits a canary's progress, or its verdict (which also goes into the reload outcome). */
  report(report: CanaryReport): void;
  /** Emits that a starved canary was lent one more connection. */
  lent(e: Omit<CanaryLend, 'type'>): void;
  /** False: a starved canary is lent nothing more (HITLESS_CANARY_LEND=0, for measurements only). */
  readonly lends: boolean;
}

/** A strategy; strategies/index.ts lists them by name (a new one goes there and in config's STRATEGY_NAMES). */
export interface ReloadStrategy {
  readonly name: string;
  run(ctx: ReloadContext): Promise<void>;
}
