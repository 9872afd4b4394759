/**
 * `rolling`: one slot at a time, start the new worker, wait until it is ready, then retire
 * the old worker of that slot (handing its connections to the new workers alive at that
 * moment) before the next slot: at most N+1 workers are alive.
 *
 * If a new worker fails, the slots already replaced get the old version back, and then
 * every worker of the rejected version is stopped (gracefully: they served real traffic). A slot whose old version cannot be put
 * back either (its worker fails too) is left empty and refilled with backoff like a crashed
 * slot of the serving generation: the rejected version never keeps serving.
 */
import type { Generation } from '../generation.js';
import type { ReloadContext, ReloadStrategy } from '../strategy.js';

export const rolling: ReloadStrategy = {
  name: 'rolling',
  run: (ctx) => rollOut(ctx, 0),
};

/**
 * Rolls every slot over to `next`, one at a time. Slots below `first` already have a ready
 * worker of `next` beside the old one (a canary that passed): only their old worker is
 * retired. A failure puts the old version back into every slot already replaced.
 */
export async function rollOut(ctx: ReloadContext, first: number): Promise<void> {
  const { next, old } = ctx;
  ctx.phase('spawning');
  for (let slot = 0; slot < next.size; slot++) {
    const ready = slot < first ? next.workers[slot] : undefined;
    if (ready === undefined) {
      try {
        await ctx.start(next, [slot]);
      } catch (err) {
        if (old) await unroll(ctx, old, slot);
        // The new workers that already served go gracefully, their connections back to the old version.
        await ctx.retire(next.live(), old);
        throw err;
      }
    }
    const prev = old?.workers[slot];
    if (old && prev) {
      old.workers[slot] = undefined;
      await ctx.retire([prev], next);
      ctx.phase('spawning');
    }
  }
  ctx.phase('ready');
  ctx.switchTo();
  // Slots the old generation had beyond the new size (a reload that lowers `workers`).
  if (old && old.live().length > 0) await ctx.retire(old.live(), next);
}

/** Puts the old version back into slots [0, upTo), one at a time. */
async function unroll(ctx: ReloadContext, old: Generation, upTo: number): Promise<void> {
  for (let slot = 0; slot < Math.min(upTo, old.size); slot++) {
    if (old.workers[slot]) continue;
    const back = ctx.spawn(old, slot);
    const ok = await back.waitReady(old.spec.readyTimeout).then(() => true, () => false);
    if (ok) continue;
    old.workers[slot] = undefined;
    ctx.discard([back]);
    ctx.refill(old, slot);
  }
}
