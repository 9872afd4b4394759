/**
 * Scenario 2: reload under load. A saturating load (wrk and this repo's load client side
 * by side, both counting lost requests) runs for a fixed time while the target reloads
 * every `everyMs`. wrk gives the authoritative failure totals; the load client gives
 * per-request records, cut into reload windows (request → old generation gone) and
 * steady time, and into 100 ms buckets for the chart.
 */
import { freePort, now, sleep } from '../proc.js';
import { startLoad } from '../loadgen.js';
import { buckets, inWindows, median, summarise, type Bucket, type RecordSummary, type Window } from '../stats.js';
import { runWrk, type WrkResult } from '../wrk.js';
import { slowRequest, type SlowOutcome } from '../slow.js';
import { BareTarget } from '../targets/bare.js';
import { HitlessTarget } from '../targets/hitless.js';
import { Pm2Target } from '../targets/pm2.js';
import { reloadAndWait, type Target, type TargetOptions } from '../targets/target.js';

export type TargetKind = 'hitless-cli' | 'hitless-sighup' | 'pm2' | 'pm2-plain' | 'naive';

export function makeTarget(kind: TargetKind, o: TargetOptions): Target {
  switch (kind) {
    case 'hitless-cli': return new HitlessTarget(o, 'cli');
    case 'hitless-sighup': return new HitlessTarget(o, 'sighup');
    case 'pm2': return new Pm2Target(o);
    case 'pm2-plain': return new Pm2Target({ ...o, plainApp: true });
    case 'naive': return new BareTarget(o, true);
  }
}

export interface ReloadVariant {
  name: string;
  handlerMs: number;
  keepAlive: boolean;
  /** Put a 1 s request in flight just before every reload. */
  slow: boolean;
}

export interface ReloadOptions {
  durationMs: number;
  everyMs: number;
  workers: number;
  wrkConnections: number;
  loadConnections: number;
  log: (line: string) => void;
}

export interface ReloadRow {
  target: string;
  kind: TargetKind;
  variant: ReloadVariant;
  reloads: number;
  /** Connections of wrk and of the load client. */
  connections?: { wrk: number; load: number };
  reloadErrors: string[];
  reloadMs: { median: number; max: number };
  wrk: Pick<WrkResult, 'requests' | 'errors' | 'non2xx' | 'rps'>;
  load: { all: RecordSummary; steady: RecordSummary; reload: RecordSummary };
  slow: Partial<Record<SlowOutcome, number>> | undefined;
  /** For the chart: 100 ms buckets and reload windows, ms from the start of the load. */
  chart: { buckets: Bucket[]; windows: Window[]; durationMs: number };
}

export async function reloadUnderLoad(kind: TargetKind, variant: ReloadVariant, o: ReloadOptions): Promise<ReloadRow> {
  const target = makeTarget(kind, { port: await freePort(), handlerMs: variant.handlerMs, workers: o.workers });
  try {
    await target.start();
    const origin = now();
    const load = startLoad({ port: target.port, connections: o.loadConnections, durationMs: o.durationMs, keepAlive: variant.keepAlive });
    const wrk = runWrk({ port: target.port, connections: o.wrkConnections, durationMs: o.durationMs, keepAlive: variant.keepAlive });
    const windows: Window[] = [];
    const errors: string[] = [];
    const slowOutcomes: Promise<SlowOutcome>[] = [];
    for (let k = 1; origin + k * o.everyMs < origin + o.durationMs - 1500; k++) {
      const at = origin + k * o.everyMs;
      if (now() < at) await sleep(at - now());
      if (now() > origin + o.durationMs - 1500) break;
      if (variant.slow) {
        const s = slowRequest(target.port);
        slowOutcomes.push(s.done);
        await s.sent;
        await sleep(20); // the bytes are on a connected socket; give the worker a moment to read them
      }
      try {
        const r = await reloadAndWait(target);
        windows.push({ from: r.requestedAt, to: r.completeAt });
      } catch (err) {
        errors.push(err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err));
      }
    }
    const [records, w] = await Promise.all([load.done, wrk]);
    const slow = variant.slow ? tally(await Promise.all(slowOutcomes)) : undefined;
    const endSteady = origin + o.durationMs - 200;
    const row: ReloadRow = {
      target: target.name,
      kind,
      variant,
      reloads: windows.length,
      connections: { wrk: o.wrkConnections, load: o.loadConnections },
      reloadErrors: errors,
      reloadMs: {
        median: median(windows.map((x) => x.to - x.from)),
        max: Math.max(...windows.map((x) => x.to - x.from)),
      },
      wrk: { requests: w.requests, errors: w.errors, non2xx: w.non2xx, rps: w.rps },
      load: {
        all: summarise(records),
        steady: summarise(records, (t) => t > origin + 500 && t < endSteady && !inWindows(t, windows)),
        reload: summarise(records, (t) => inWindows(t, windows)),
      },
      slow,
      chart: {
        buckets: buckets(records, origin, 100, o.durationMs),
        windows: windows.map((x) => ({ from: x.from - origin, to: x.to - origin })),
        durationMs: o.durationMs,
      },
    };
    const wf = w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout;
    o.log(
      `  ${target.name} ${variant.name}: ${row.reloads} reloads, wrk ${w.requests} req ${wf} failed ${w.non2xx} non-2xx; ` +
        `loadgen ${row.load.all.requests} req ${row.load.all.failed} failed ${row.load.all.non2xx} non-2xx ${JSON.stringify(row.load.all.byKind)}; ` +
        `p99 steady ${row.load.steady.p99.toFixed(1)} reload ${row.load.reload.p99.toFixed(1)} ms` +
        (slow ? `; slow ${JSON.stringify(slow)}` : '') +
        (errors.length ? `; reload errors: ${errors.join(' | ')}` : ''),
    );
    return row;
  } finally {
    await target.stop().catch(() => undefined);
  }
}

function tally(xs: SlowOutcome[]): Partial<Record<SlowOutcome, number>> {
  const out: Partial<Record<SlowOutcome, number>> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
