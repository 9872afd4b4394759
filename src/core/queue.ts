/**
 * The reload queue: one reload runs at a time, at most one waits behind it, and every
 * further request joins the one waiting (issue 25: a request is never dropped, and any burst
 * costs at most two reloads). The supervisor owns the queue and decides when the waiting
 * reload may begin; the queue keeps what waits and counts what became of each request.
 */
import type { StrategyName } from '../config/types.js';
import { ReloadFollowers } from './follow.js';
import type { GenerationSpec } from './spec.js';
import type { MasterEvent, ReloadConfigDiff, ReloadOutcome, ReloadRequestCounts } from './types.js';

/** A reload waiting for its turn, with every request merged into it. */
export interface QueuedReload {
  reason: string;
  /** Every request merged into it, the first included (status shows them). */
  reasons: string[];
  since: number;
  /** The last spec source and strategy a request gave win. */
  spec: (() => GenerationSpec) | undefined;
  strategy: StrategyName | undefined;
  /** What it changes, computed when it begins (SupervisorReloadOptions.config); the last request's wins, with its spec. */
  config: (() => ReloadConfigDiff) | undefined;
  /** The requests that follow it: the first and every one merged into it (they see its events only). */
  follow: ReloadFollowers;
  /** Settles the callers' promises with the reload's outcome. */
  resolve: (o: ReloadOutcome) => void;
}


export class ReloadQueue {
  readonly requests: ReloadRequestCounts = { started: 0, queued: 0, merged: 0, refused: 0 };
  #waiting: { reload: QueuedReload; promise: Promise<ReloadOutcome> } | undefined;
  readonly #now: () => number;

  /** `resumed`: the counts of the master this one replaced (one from before `refused` has none). */
  constructor(now: () => number, resumed?: Partial<ReloadRequestCounts>) {
    this.#now = now;
    if (resumed) Object.assign(this.requests, resumed);
  }

  /** True while a reload waits. */
  get pending(): boolean {
    return this.#waiting !== undefined;
  }

  /** For status: the waiting reload's requests and since when it waits. */
  snapshot(): { reasons: string[]; since: number } | undefined {
    const w = this.#waiting?.reload;
    return w && { reasons: [...w.reasons], since: w.since };
  }

  /** A request that begins at once (nothing runs, nothing waits). */
  started(): void {
    this.requests.started++;
  }

  /** A request merged into one waiting elsewhere (held during a master upgrade: the supervisor). */
  merged(): void {
    this.requests.merged++;
  }

  /** A request refused before it began or was queued. */
  refused(): void {
    this.requests.refused++;
  }

  /**
   * Queues a request: it joins the reload already waiting (`merged`; its outcome then says
   * `coalesced`) or becomes the one waiting.
   *
   * @example
   * const { promise, merged } = queue.add('SIGHUP', undefined, undefined);
   */
  add(reason: string, spec: (() => GenerationSpec) | undefined, strategy: StrategyName | undefined, follow?: (e: MasterEvent) => void, config?: () => ReloadConfigDiff): { promise: Promise<ReloadOutcome>; merged: boolean } {
    const waiting = this.#waiting;
    if (waiting) {
      waiting.reload.follow.add(follow);
      if (spec) waiting.reload.spec = spec;
      if (config) waiting.reload.config = config;
      if (strategy) waiting.reload.strategy = strategy;
      waiting.reload.reasons.push(reason);
      this.requests.merged++;
      return { promise: waiting.promise.then((o) => ({ ...o, coalesced: true })), merged: true };
    }
    let resolve: (o: ReloadOutcome) => void = () => {};
    const promise = new Promise<ReloadOutcome>((r) => (resolve = r));
    const followers = new ReloadFollowers();
    followers.add(follow);
    this.#waiting = { reload: { reason, reasons: [reason], since: this.#now(), spec, strategy, config, follow: followers, resolve }, promise };
    this.requests.queued++;
    return { promise, merged: false };
  }

  /** Takes the waiting reload out, to run it (its `resolve` settles its callers). */
  take(): QueuedReload | undefined {
    const reload = this.#waiting?.reload;
    this.#waiting = undefined;
    return reload;
  }
}
