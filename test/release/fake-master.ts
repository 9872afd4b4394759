// A fake MasterHandle for trigger tests: records reload calls and lets a test wait for the n-th.
import { EventEmitter } from 'node:events';
import type { MasterHandle, ReloadOutcome, StatusSnapshot } from '../../src/core/types.js';
import { outcome } from './helpers.js';

export class FakeMaster extends EventEmitter implements MasterHandle {
  reasons: string[] = [];
  /** What the next reloads answer (default: ok). */
  answer: (n: number) => Promise<ReloadOutcome> = async () => outcome(true);
  #waiters: Array<{ n: number; resolve: () => void }> = [];

  status(): StatusSnapshot {
    throw new Error('not used');
  }
  reload(reason: string): Promise<ReloadOutcome> {
    this.reasons.push(reason);
    const n = this.reasons.length;
    for (const w of this.#waiters.filter((w) => w.n <= n)) w.resolve();
    this.#waiters = this.#waiters.filter((w) => w.n > n);
    return this.answer(n);
  }
  async stop(): Promise<void> {}
  /** Resolves once reload() was called at least `n` times. */
  reloads(n: number): Promise<void> {
    if (this.reasons.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }
}
