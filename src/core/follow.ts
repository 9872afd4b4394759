/**
 * Which master events are one reload's own, for the requests that follow it (`hitless
 * reload`, `release`, `rollback` over the control socket; ReloadOptions.follow).
 *
 * The master's event stream mixes reloads: the queued reload starts the moment the one
 * before it ends (before that one's reply reaches its client), and an earlier reload's
 * old generation may end its background drain during a later reload. A client that read
 * the whole stream printed the next reload's spawns, the previous one's drain, and counts
 * of both (h10 F1). So the supervisor hands each request only its reload's events: the
 * request's own `reload-queued` (said by the supervisor, not through here), then, while its
 * reload runs, the events of the generation it starts and of the generations it retires.
 */
import type { MasterEvent } from './types.js';

/** Event types about one generation that a reload's followers see for its own generations. */
const GENERATION_EVENTS: ReadonlySet<MasterEvent['type']> = new Set([
  'reload-start', 'reload-phase', 'reload-ready', 'reload-draining', 'reload-drained', 'drain-background',
  'worker-spawn', 'worker-ready', 'worker-exit', 'worker-status', 'worker-restart', 'slot-failed', 'worker-warmup',
  'worker-priority', 'worker-boot-priority', 'ready-wait', 'warning',
]);

/**
 * The followers of one reload: every request that started it or was queued or merged into
 * it. The supervisor offers it every event while that reload runs.
 *
 * @example
 * const follow = new ReloadFollowers();
 * follow.add((e) => send(e));
 * follow.retires(7);                  // the reload retires generation 7
 * follow.offer({ type: 'reload-start', generation: 8, reason: 'SIGHUP', workers: 2 }); // sent
 * follow.offer({ type: 'reload-drained', generation: 6, forced: 0, ms: 5000 });        // not: an earlier reload's
 */
export class ReloadFollowers {
  readonly #listeners: ((e: MasterEvent) => void)[] = [];
  /** The generation the reload starts (from its `reload-start`). */
  #generation: number | undefined;
  /** The generations the reload retires (its old generation; a rejected canary: its own), and a rollback's. */
  readonly #retiring = new Set<number>();

  add(listener: ((e: MasterEvent) => void) | undefined): void {
    if (listener) this.#listeners.push(listener);
  }

  /** The reload retires `generation`'s workers: their drain is its own (before its `reload-draining`). */
  retires(generation: number): void {
    this.#retiring.add(generation);
  }

  /**
   * Passes `e` to the followers when it is this reload's own; `own`: it is, whatever it
   * says (its `reload-done`: another request's refusal may name the same generation).
   */
  offer(e: MasterEvent, own = false): void {
    if (this.#listeners.length === 0 || !(own || this.#owns(e))) return;
    for (const listener of this.#listeners) {
      try {
        listener(e);
      } catch {
        // A follower's failure (a vanished client) is its own: the reload and the others go on.
      }
    }
  }

  #owns(e: MasterEvent): boolean {
    if (e.type === 'reload-start') this.#generation ??= e.generation;
    // The reload rolls back (supervisor #rollBack): the generation it starts for that is its own too.
    if (e.type === 'reload-rollback' && e.generation === this.#generation) {
      this.#retiring.add(e.to);
      return true;
    }
    if (GENERATION_EVENTS.has(e.type) && 'generation' in e && e.generation !== undefined) return e.generation === this.#generation || this.#retiring.has(e.generation);
    switch (e.type) {
      // Only the running reload's canary and retirements say these (a scale never runs beside a reload).
      case 'canary-progress':
      case 'canary-verdict':
      case 'canary-lend':
      case 'drain-limit':
        return true;
      default:
        return false;
    }
  }
}
