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
import { combine, totalOf, type Counts, type TrafficBook } from '../traffic.js';
import { formatDuration } from '../../config/duration.js';
import type { CanaryConnections, CanaryReport } from '../types.js';
import type { Worker } from '../worker.js';
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
 * Why no kept-alive connection of the serving generation can move to the canary, and what
 * would let them (canary.md, "What moves"); undefined when they can. Workers that are not
 * Node with the in-app library or the preload say no `moves` (to send) or no `handover`
 * (to take) in a hello; so do workers with the library whose servers are all HTTPS or
 * HTTP/2, which the message tells apart (advising the library they run would mislead).
 *
 * @example
 * unmovable(next, old, settings); // { why: 'the serving workers cannot hand connections over (…)', fix: '…' }
 */
export function unmovable(next: Generation, old: Generation, settings: CanaryConfig): { why: string; fix: string } | undefined {
  if (!next.spec.handover) return { why: '`handover` is off', fix: 'turn `handover` on' };
  if (canaryAsk(settings, next.size) === undefined) return { why: '`canary.connections` is 0', fix: 'set `canary.connections` ("auto" lends the canary its share)' };
  const library = 'the in-app library (or the preload) in Node workers, which moves kept-alive connections';
  const serving = old.live().filter((w) => w.state === 'ready');
  if (!serving.some((w) => w.hello?.moves === true)) {
    if (secureOnly(serving)) return { why: `the serving workers' servers are HTTPS or HTTP/2 ${SECURE_WHY}`, fix: SECURE_FIX };
    return { why: 'the serving workers cannot hand connections over (none said `moves` in a hello: they do not run the in-app library)', fix: library };
  }
  const canaries = next.live();
  if (!canaries.some((w) => w.hello?.handover === true)) {
    if (secureOnly(canaries)) return { why: `the canary workers' servers are HTTPS or HTTP/2 ${SECURE_WHY}`, fix: SECURE_FIX };
    return { why: 'the canary workers take no handed-over connections (none said `handover` in a hello: they do not run the in-app library)', fix: library };
  }
  return undefined;
}

const SECURE_WHY = '(their hello lists the sockets they accept on, but none whose connections can be handed over): ' +
  'TLS and HTTP/2 connections keep their state in the process and never move (docs/canary.md, "Not moved")';
const SECURE_FIX = 'plain HTTP/1.1 between the workers and a proxy that ends TLS in front of them (those connections move)';

/**
 * True when these workers run the in-app library (they said hello, naming the sockets they
 * accept on in `adopted`) but none can take or send a connection: the library lists in
 * `listeners` (and `moves` for) plain node:http servers only, so a worker whose registered
 * servers are all https or http2 says hello with `adopted` and no `listeners` (ready.ts).
 * Such workers need no library: theirs cannot move what TLS and HTTP/2 keep in the process.
 */
function secureOnly(workers: readonly Worker[]): boolean {
  return workers.some((w) => w.hello !== undefined && w.hello.listeners.length === 0 && (w.hello.adopted?.length ?? 0) > 0);
}

/**
 * Why a canary none of whose workers sent traffic figures (`stats`) cannot be judged, and
 * what makes them report; undefined once one did (the in-app library reports every second,
 * served or not). Such a canary counts 0 responses whatever it answered, so the advice for
 * too little traffic or connections that cannot move would be wrong.
 *
 * @example
 * unreported(traffic, next, old, settings); // 'the canary workers reported no traffic in 5 s (…): …'
 */
export function unreported(traffic: Pick<TrafficBook, 'reported'>, next: Generation, old: Generation, settings: CanaryConfig): string | undefined {
  if (traffic.reported(next.id)) return undefined;
  const serving = traffic.reported(old.id) ? '' : ', nor did the serving workers';
  return `the canary workers reported no traffic in ${formatDuration(settings.duration)} (they sent no \`stats\` message${serving}), ` +
    'so the canary cannot be judged, whatever it served; more traffic or a longer `canary.duration` does not change that. ' +
    'What helps: the in-app library in Node workers (it reports every second), the `stats` lines of the worker contract in other programs ' +
    '(one JSON line a second on the IPC channel: README, "The worker contract", and docs/ARCHITECTURE.md, "Traffic figures"), ' +
    'or `canary.minRequests: 0` (a canary that did not fail then goes live unjudged)';
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
    const lends = split.topUps;
    return { ...ask, moved, returned, lost, ...(held === undefined ? {} : { held }), ...(lends > 0 ? { lends } : {}) };
  };
  const look = (final: boolean): CanaryReport => {
    if (warm === undefined && ctx.now() - startedAt >= warmup) warm = mark();
    const j = judge({ ...since(ready), warm: warm && since(warm) }, settings, final);
    const c = connections();
    // A canary that sent no figures at all may have served plenty: neither connections nor
    // traffic help it, only figures do (report h12 N4), so say that alone.
    const silent = j.verdict === 'inconclusive' ? unreported(ctx.traffic, next, old, settings) : undefined;
    // Too few responses, and no kept-alive connection could move: say why, since waiting
    // longer cannot help clients that never open a new connection (a pool).
    const stuck = silent === undefined && j.verdict === 'inconclusive' && (c === undefined || c.moved + c.lost === 0) ? unmovable(next, old, settings) : undefined;
    const reason = silent ?? (stuck === undefined ? j.reason
      : `${j.reason}; no kept-alive connection could move to it: ${stuck.why}, so clients that keep their connections open (a pool) ` +
        `never reach it, however long it runs. What helps: clients that open new connections (the canary gets its share of those), ` +
        `\`canary.minRequests: 0\` (a canary that did not fail then goes live unjudged), or ${stuck.fix}`);
    return {
      generation: next.id, verdict: j.verdict, reason, elapsedMs: ctx.now() - startedAt,
      durationMs: settings.duration, warmupMs: warmup, canary: j.canary, baseline: j.baseline, latencyLimitMs: j.latencyLimitMs,
      ...(c ? { connections: c } : {}),
    };
  };
  const lender = split && ctx.lends ? new Lender(ctx, old, split, expectedShare(ctx, old, ask)) : undefined;
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
    lender?.look();
  }
}

/** Looks (one per report interval) over which a canary got too little before it is lent more. */
export const STARVED_LOOKS = 2;

/** Responses the serving generation must answer over those looks to tell: below it, too little traffic to judge a share by. */
export const STARVED_MIN_SERVING = 20;

/**
 * True when the canary answered less than a quarter of its share over the last looks while
 * the serving generation answered at least {@link STARVED_MIN_SERVING}, and it holds no
 * request it has not answered (`busy` 0: whatever it holds is idle; undefined, not said, or
 * busy: it is lent nothing more, as a canary that hangs must not get more clients).
 *
 * @example
 * starved({ canary: 0, serving: 1200, share: 1 / 3, busy: 0 }); // true
 * starved({ canary: 0, serving: 1200, share: 1 / 3, busy: 2 }); // false: it holds requests it has not answered
 */
export function starved(f: { canary: number; serving: number; share: number; busy: number | undefined }): boolean {
  if (f.busy !== 0 || f.serving < STARVED_MIN_SERVING) return false;
  return f.canary < (f.share * (f.canary + f.serving)) / 4;
}

/** The share of the responses the canary should get: its share of the connections. */
function expectedShare(ctx: ReloadContext, old: Generation, ask: SplitAsk | undefined): number {
  if (ask === undefined) return 0;
  if ('share' in ask) return ask.share;
  const rest = ctx.traffic.connections(old.id) ?? 0;
  return ask.count / Math.max(1, ask.count + rest);
}

/**
 * Lends a starved canary more (issue 18, behind pools that reuse the connection they
 * released last): the connections it was lent were picked spread over use, but a pool that
 * is rarely busy sends nearly every request over the one or two connections it used last,
 * and those can stay with the serving workers, or be left behind later as the pool's load
 * falls. When the canary answered too little over {@link STARVED_LOOKS} looks
 * ({@link starved}), the serving worker that answered the most over them moves the
 * connection it used last (`move` with `recent`); then it waits as many looks again. A
 * canary that has not reported since the first of those looks (its event loop blocked) is
 * lent nothing.
 */
class Lender {
  readonly #looks: Array<{ at: number; canary: number; serving: number; served: Map<Worker, number> }> = [];
  #quietUntil = 0;

  constructor(
    private readonly ctx: ReloadContext,
    private readonly old: Generation,
    private readonly split: ConnectionSplit,
    private readonly share: number,
  ) {
    this.#take();
  }

  /** After each report: records the figures, and lends one more connection when the canary starved. */
  look(): void {
    this.#take();
    const n = this.#looks.length - 1;
    if (n < STARVED_LOOKS || n < this.#quietUntil) return;
    const now = this.#looks[n]!;
    const then = this.#looks[n - STARVED_LOOKS]!;
    const canary = now.canary - then.canary;
    const serving = now.serving - then.serving;
    // Figures from before the looks (a canary whose event loop is blocked reports nothing) say nothing of now.
    const fresh = (this.ctx.traffic.reportedAt(this.ctx.next.id) ?? Number.NEGATIVE_INFINITY) > then.at;
    if (!fresh || !starved({ canary, serving, share: this.share, busy: this.ctx.traffic.busy(this.ctx.next.id) })) return;
    const busiest = [...now.served].map(([w, v]) => ({ w, answered: v - (then.served.get(w) ?? v) })).sort((a, b) => b.answered - a.answered)[0];
    if (busiest === undefined || busiest.answered === 0 || !this.split.topUp(busiest.w)) return;
    this.#quietUntil = n + STARVED_LOOKS;
    this.ctx.lent({ generation: this.ctx.next.id, from: busiest.w.generation, slot: busiest.w.slot, canary, serving, ms: now.at - then.at });
  }

  #take(): void {
    const { ctx, old } = this;
    // Only senders can lend (a worker that says no `moves`, or was not ready at the split, cannot).
    const served = new Map(this.split.senders.filter((w) => w.exitInfo === undefined).map((w) => [w, ctx.served(w)] as const));
    this.#looks.push({ at: ctx.now(), canary: totalOf(ctx.traffic.total(ctx.next.id)), serving: totalOf(ctx.traffic.total(old.id)), served });
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
  try {
    ctx.switchTo();
  } catch (err) {
    // A worker of `next` died while the split ended (a canary that is the whole generation:
    // nothing started since to notice it): the survivors' connections go back to the old version.
    if (!isHitlessError(err, 'ERR_STOPPING')) await ctx.retire(next.live(), old);
    throw err;
  }
  await ctx.retire(old.live(), next);
}
