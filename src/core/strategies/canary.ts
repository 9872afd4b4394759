/**
 * `canary`: start `canary.workers` workers of the next generation beside the serving one,
 * on the same sockets (the kernel gives them their share of new connections), hand them a
 * share of the serving workers' kept-alive connections (split.ts: clients that keep their
 * connections open no new ones), compare their traffic with the serving generation's over
 * the same window for `canary.duration` (canary-rule.ts decides, at every report and at
 * the end), and only then bring the rest live the `canary.then` way (`all` or `rolling`),
 * the old generation's connections moving as in any reload.
 *
 * Fail, inconclusive, or a canary worker that dies: the split ends, the canary workers are
 * retired with every connection they hold (moved or new) handed back to the serving
 * generation, and the reload fails with ERR_CANARY_FAILED or ERR_CANARY_INCONCLUSIVE; the
 * outcome carries both sets of figures and what became of the connections. The serving
 * generation keeps serving throughout: it only lends connections.
 */
import { HitlessError, isHitlessError } from '../../errors.js';
import { STATS_INTERVAL_MS } from '../../lib/protocol.js';
import type { CanaryConfig } from '../../config/types.js';
import type { Generation } from '../generation.js';
import type { ReloadContext, ReloadStrategy } from '../strategy.js';
import { combine, type Counts } from '../traffic.js';
import type { CanaryConnections, CanaryReport } from '../types.js';
import { slotRange } from '../slots.js';
import { SPLIT_WITHIN_MS, type ConnectionSplit, type SplitAsk } from '../split.js';
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
    const split = splitConnections(ctx, old, settings);
    let verdict: Decision;
    try {
      verdict = await observe(ctx, old, settings, split);
    } catch (err) {
      // The master began stopping: everything drains, the canary's connections included.
      await split?.end();
      await ctx.retire(next.live(), undefined);
      throw err;
    }
    // No more connections move before the canary goes back out, or the rest goes live.
    if (split) {
      const counts = await split.end();
      if (verdict.connections) Object.assign(verdict.connections, { moved: counts.handedOver, returned: counts.returned, lost: counts.lost });
    }
    const { output: _output, ...report } = verdict;
    ctx.report(report);
    if (verdict.verdict !== 'pass') {
      // At full speed: until a connection is handed back, its requests get the version
      // judged bad (paced, 6 saturated connections took ~0.8-1.9 s to come back).
      await ctx.retire(next.live(), old, { fullSpeed: true });
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

/** The most of each serving worker's connections "auto" moves: the serving generation keeps traffic to compare with. */
export const AUTO_SHARE_MAX = 0.5;

/**
 * What the serving workers are asked to hand the canary (`canary.connections`): "auto" is
 * the canary's share of workers (1 of 3: a third), at most {@link AUTO_SHARE_MAX}; a number
 * up to 1 a share, above 1 a count; 0 (or a spec without hand-over) nothing.
 *
 * @example
 * canaryAsk({ ...DEFAULT_CANARY, workers: 1 }, 3); // { share: 0.333… }
 */
export function canaryAsk(settings: CanaryConfig, workers: number): SplitAsk | undefined {
  const c = settings.connections;
  if (c === 'auto') return { share: Math.min(settings.workers / Math.max(1, workers), AUTO_SHARE_MAX) };
  if (c === 0) return undefined;
  return c <= 1 ? { share: c } : { count: c };
}

/** Starts moving the canary's share of the serving workers' connections to it (undefined: nothing to move). */
function splitConnections(ctx: ReloadContext, old: Generation, settings: CanaryConfig): ConnectionSplit | undefined {
  const { next } = ctx;
  const ask = next.spec.handover ? canaryAsk(settings, next.size) : undefined;
  if (ask === undefined) return undefined;
  const senders = old.live().filter((w) => w.state === 'ready' && w.hello?.moves === true);
  return ctx.split(senders, () => next.live().filter((w) => w.acceptsConnections), ask, Math.min(SPLIT_WITHIN_MS, settings.duration));
}

/**
 * Compares the canary with the serving generation at every report interval until a
 * decision, which it returns without reporting it (the caller ends the split first). A
 * canary worker that dies is a fail (with its last output lines); a stop of the master
 * rethrows.
 */
async function observe(ctx: ReloadContext, old: Generation, settings: CanaryConfig, split: ConnectionSplit | undefined): Promise<Decision> {
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
  const ask = split && canaryAsk(settings, next.size);
  const connections = (): CanaryConnections | undefined => {
    if (split === undefined) return undefined;
    const { handedOver: moved, returned, lost } = split.counts;
    const held = ctx.traffic.connections(next.id);
    return { ...ask, moved, returned, lost, ...(held === undefined ? {} : { held }) };
  };
  const look = (final: boolean): CanaryReport => {
    if (warm === undefined && ctx.now() - startedAt >= warmup) warm = mark();
    const j = judge({ ...since(ready), warm: warm && since(warm) }, settings, final);
    const c = connections();
    return {
      generation: next.id, verdict: j.verdict, reason: j.reason, elapsedMs: ctx.now() - startedAt,
      durationMs: settings.duration, warmupMs: warmup, canary: j.canary, baseline: j.baseline, latencyLimitMs: j.latencyLimitMs,
      ...(c ? { connections: c } : {}),
    };
  };
  for (;;) {
    const remaining = settings.duration - (ctx.now() - startedAt);
    try {
      if (remaining > 0) await ctx.wait(Math.min(STATS_INTERVAL_MS, remaining));
    } catch (err) {
      if (isHitlessError(err, 'ERR_STOPPING')) throw err;
      const e = isHitlessError(err) ? err : undefined;
      const figures = look(false);
      const report: CanaryReport = { ...figures, verdict: 'fail', reason: `${e?.message ?? String(err)} (${figures.reason})` };
      return { ...report, output: (e?.details.output as string[] | undefined) ?? [] };
    }
    const report = look(ctx.now() - startedAt >= settings.duration);
    if (report.verdict !== 'pending') return { ...report, output: [] };
    ctx.report(report);
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
