/**
 * The reload trigger shared by the watcher: trailing debounce plus coalescing.
 *
 * Every change (re)arms a timer of `debounce` ms, so a burst (an rsync, a slow upload
 * writing chunk after chunk) gives ONE reload after it goes quiet. Changes that arrive
 * while a reload runs coalesce into exactly one more reload after it ends.
 */
import type { ReloadOutcome } from '../core/types.js';

export interface ReloadTriggerOptions {
  debounce: number;
  reload: () => Promise<ReloadOutcome>;
  /** Told about each reload's result (or the error it threw). */
  onResult?: (result: { outcome?: ReloadOutcome; error?: unknown }) => void;
}

/**
 * Debounced, coalescing reload trigger.
 *
 * @example
 * const trigger = new ReloadTrigger({ debounce: 500, reload: () => master.reload('watch') });
 * watcher.on('all', () => trigger.poke());
 * await trigger.close();
 */
export class ReloadTrigger {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** A change arrived whose reload has not started yet. */
  #pending = false;
  #closed = false;
  readonly #opts: ReloadTriggerOptions;

  constructor(opts: ReloadTriggerOptions) {
    this.#opts = opts;
  }

  /** Reports a change. */
  poke(): void {
    if (this.#closed) return;
    this.#pending = true;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fire(), this.#opts.debounce);
  }

  #fire(): void {
    this.#timer = undefined;
    // While a reload runs, keep the change pending: the running reload's end fires it.
    if (this.#running || !this.#pending || this.#closed) return;
    this.#pending = false;
    this.#running = this.#opts.reload().then(
      (outcome) => this.#opts.onResult?.({ outcome }),
      (error: unknown) => this.#opts.onResult?.({ error }),
    ).finally(() => {
      this.#running = undefined;
      // One more reload for the changes seen meanwhile, once their debounce has passed.
      if (this.#pending && this.#timer === undefined) this.#fire();
    });
  }

  /** Stops reacting; waits for a reload in progress to finish. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
