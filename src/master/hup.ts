/**
 * The SIGHUP burst rule, apart from signals so a fake clock can test it. A SIGHUP reloads at
 * once, unless it belongs to a burst: it came less than SIGHUP_BURST_MS after the previous
 * SIGHUP while that one's reload was still running, or after a SIGHUP that was itself part
 * of the burst. A script signalling in a loop gets exactly one new generation; a SIGHUP
 * sent after the previous reload finished always reloads, however fast that reload was,
 * and no SIGHUP waits for a debounce timer.
 */

/** Two SIGHUPs closer together than this can belong to one burst. */
export const SIGHUP_BURST_MS = 200;

export class HupFilter {
  #last = -Infinity;
  #lastIgnored = false;
  /** Reloads started by accepted SIGHUPs that have not finished. */
  #reloading = 0;
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /**
   * Decides one SIGHUP: true means reload now (then call `done()` when that reload ends).
   *
   * @example
   * if (hups.accept()) void supervisor.reload('SIGHUP').finally(() => hups.done());
   */
  accept(): boolean {
    const now = this.#now();
    const gap = now - this.#last;
    this.#last = now;
    if (gap < SIGHUP_BURST_MS && (this.#lastIgnored || this.#reloading > 0)) {
      this.#lastIgnored = true;
      return false;
    }
    this.#lastIgnored = false;
    this.#reloading++;
    return true;
  }

  /** The reload the last accepted SIGHUP started has finished. */
  done(): void {
    this.#reloading = Math.max(0, this.#reloading - 1);
  }
}
