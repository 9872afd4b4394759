/**
 * `all`: start every worker of the next generation beside the serving one (both accept
 * from the same kernel queue), wait until all are ready, switch, then retire the old
 * generation. At most 2N workers are alive; the old generation is never touched before
 * the new one is whole, so a failure costs nothing.
 */
import type { ReloadStrategy } from '../strategy.js';
import { slotRange } from '../slots.js';

export const all: ReloadStrategy = {
  name: 'all',
  async run(ctx) {
    const { next, old } = ctx;
    ctx.phase('spawning');
    await ctx.start(next, slotRange(0, next.size));
    ctx.phase('ready');
    ctx.switchTo();
    if (old) await ctx.retire(old.live(), next);
  },
};
