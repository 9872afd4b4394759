/**
 * `canary`: start `canary.workers` workers of the next generation beside the serving one,
 * on the same sockets (the kernel gives them their share of new connections), compare
 * their traffic with the serving generation's over the same window for `canary.duration`
 * (canary-rule.ts decides, at every report and at the end), and only then bring the rest
 * live the `canary.then` way (`all` or `rolling`).
 *
 * Fail, inconclusive, or a canary worker that dies: the canary workers are retired with
 * their connections handed back to the serving generation, and the reload fails with
 * ERR_CANARY_FAILED or ERR_CANARY_INCONCLUSIVE; the outcome carries both sets of figures.
 * The serving generation is never touched before the canary passed.
 */
import { HitlessError, isHitlessError } from '../../errors.js';
import { STATS_INTERVAL_MS } from '../../lib/protocol.js';
import type { CanaryConfig } from '../../config/types.js';
import type { Generation } from '../generation.js';
import type { ReloadContext, ReloadStrategy } from '../strategy.js';
import { combine, type Counts } from '../traffic.js';
import type { CanaryReport } from '../types.js';
import { slotRange } from '../slots.js';
import { judge } from './canary-rule.js';
import { all } from './all.js';
import { rollOut } from './rolling.js';

/**
 * The canary strategy (STRATEGIES.canary in strategies/index.ts).
 *
 * @example
 * await canary.run(ctx); // throws ERR_CANARY_FAILED / ERR_CANARY_INCONCLUSIVE, or leaves `next` serving
 */
export const canary: ReloadStrategy = {
  name: 'canary',
  async run(ctx) {
    const { next, old } = ctx;
    // Nothing serves to compare with (cannot happen on a reload; kept total).
    if (!old) return all.run(ctx);
    const settings = next.spec.canary;
    const size = Math.min(settings.workers, next.size);
    ctx.phase('spawning');
    // A canary that never got ready never served: the same failure as any new worker's.
    await ctx.start(next, slotRange(0, size));
    ctx.phase('canary');
    const verdict = await observe(ctx, old, settings);
    if (verdict.verdict !== 'pass') {
      await ctx.retire(next.live(), old);
      const code = verdict.verdict === 'inconclusive' ? 'ERR_CANARY_INCONCLUSIVE' : 'ERR_CANARY_FAILED';
      throw new HitlessError(code, `canary of generation ${next.id} ${verdict.verdict === 'inconclusive' ? 'was inconclusive' : 'failed'}: ${verdict.reason}`, {
        details: { output: verdict.verdict === 'fail' ? verdict.output : [] },
      });
    }
    if (settings.then === 'rolling') return rollOut(ctx, size);
    await goLiveAll(ctx, old, size);
  },
};

type Decision = CanaryReport & { output: string[] };

/**
 * Compares the canary with the serving generation at every report interval until a
 * decision. A canary worker that dies is a fail (with its last output lines); a stop of
 * the master retires the canary and rethrows.
 */
async function observe(ctx: ReloadContext, old: Generation, settings: CanaryConfig): Promise<Decision> {
  const { next } = ctx;
  const startedAt = ctx.now();
  // The same window for both sides, from the canary's readiness; latency from the warm-up's end.
  const warmup = Math.min(settings.warmup, settings.duration / 2);
  const mark = (): { canary: Counts; baseline: Counts } => ({ canary: ctx.traffic.total(next.id), baseline: ctx.traffic.total(old.id) });
  const since = (m: { canary: Counts; baseline: Counts }): { canary: Counts; baseline: Counts } => {
    const now = mark();
    return { canary: combine(now.canary, m.canary, -1), baseline: combine(now.baseline, m.baseline, -1) };
  };
  const ready = mark();
  let warm: { canary: Counts; baseline: Counts } | undefined;
  const look = (final: boolean): CanaryReport => {
    if (warm === undefined && ctx.now() - startedAt >= warmup) warm = mark();
    const j = judge({ ...since(ready), warm: warm && since(warm) }, settings, final);
    return {
      generation: next.id, verdict: j.verdict, reason: j.reason, elapsedMs: ctx.now() - startedAt,
      durationMs: settings.duration, warmupMs: warmup, canary: j.canary, baseline: j.baseline, latencyLimitMs: j.latencyLimitMs,
    };
  };
  for (;;) {
    const remaining = settings.duration - (ctx.now() - startedAt);
    try {
      if (remaining > 0) await ctx.wait(Math.min(STATS_INTERVAL_MS, remaining));
    } catch (err) {
      if (isHitlessError(err, 'ERR_STOPPING')) {
        await ctx.retire(next.live(), undefined);
        throw err;
      }
      const e = isHitlessError(err) ? err : undefined;
      const figures = look(false);
      const report: CanaryReport = { ...figures, verdict: 'fail', reason: `${e?.message ?? String(err)} (${figures.reason})` };
      ctx.report(report);
      return { ...report, output: (e?.details.output as string[] | undefined) ?? [] };
    }
    const report = look(ctx.now() - startedAt >= settings.duration);
    ctx.report(report);
    if (report.verdict !== 'pending') return { ...report, output: [] };
  }
}

/** After a pass, the `all` way: start the other slots, switch once all are ready, retire the old generation. */
async function goLiveAll(ctx: ReloadContext, old: Generation, first: number): Promise<void> {
  const { next } = ctx;
  if (first < next.size) {
    ctx.phase('spawning');
    try {
      await ctx.start(next, slotRange(first, next.size));
    } catch (err) {
      // The canary served real traffic: its connections go back to the old version.
      await ctx.retire(next.live(), old);
      throw err;
    }
  }
  ctx.phase('ready');
  ctx.switchTo();
  await ctx.retire(old.live(), next);
}
