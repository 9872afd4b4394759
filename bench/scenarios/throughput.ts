/**
 * Scenario 1: steady throughput. The same app under the same wrk load (keep-alive and
 * `Connection: close`): bare node, hitless with 1 and 2 workers, PM2 cluster with 2
 * instances. All targets run at once on their own ports and are measured in turn,
 * round after round, so slow drift of the shared machine hits every target alike;
 * each figure is the median over rounds and is also given as a ratio to bare node.
 */
import { freePort } from '../proc.js';
import { median } from '../stats.js';
import { runWrk } from '../wrk.js';
import { BareTarget } from '../targets/bare.js';
import { HitlessTarget } from '../targets/hitless.js';
import { Pm2Target } from '../targets/pm2.js';
import type { Target } from '../targets/target.js';

export interface ThroughputOptions {
  connections: number;
  durationMs: number;
  rounds: number;
  warmupMs: number;
  log: (line: string) => void;
}

export interface ThroughputRow {
  target: string;
  mode: 'keep-alive' | 'close';
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  rpsRatio: number;
  p50Ratio: number;
  p99Ratio: number;
  rounds: number[];
}

export async function throughput(o: ThroughputOptions): Promise<ThroughputRow[]> {
  const targets: Target[] = [
    new BareTarget({ port: await freePort(), handlerMs: 0, workers: 1 }),
    new HitlessTarget({ port: await freePort(), handlerMs: 0, workers: 1 }),
    new HitlessTarget({ port: await freePort(), handlerMs: 0, workers: 2 }),
    new Pm2Target({ port: await freePort(), handlerMs: 0, workers: 2 }),
  ];
  const rows: ThroughputRow[] = [];
  try {
    for (const t of targets) {
      await t.start();
      await runWrk({ port: t.port, connections: o.connections, durationMs: o.warmupMs, keepAlive: true });
    }
    for (const mode of ['keep-alive', 'close'] as const) {
      const samples = new Map<string, { rps: number[]; p50: number[]; p99: number[]; errors: number; non2xx: number }>();
      for (let round = 0; round < o.rounds; round++) {
        // Rotate the order each round so no target always runs first (or last).
        const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
        for (const t of order) {
          const r = await runWrk({ port: t.port, connections: o.connections, durationMs: o.durationMs, keepAlive: mode === 'keep-alive' });
          const s = samples.get(t.name) ?? { rps: [], p50: [], p99: [], errors: 0, non2xx: 0 };
          s.rps.push(r.rps);
          s.p50.push(r.p50);
          s.p99.push(r.p99);
          s.errors += r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
          s.non2xx += r.non2xx;
          samples.set(t.name, s);
          o.log(`  ${mode} round ${round + 1} ${t.name}: ${Math.round(r.rps)} req/s p50 ${r.p50} ms p99 ${r.p99} ms`);
        }
      }
      const base = samples.get(targets[0]!.name)!;
      const baseRps = median(base.rps);
      const baseP50 = median(base.p50);
      const baseP99 = median(base.p99);
      for (const t of targets) {
        const s = samples.get(t.name)!;
        const rps = median(s.rps);
        const p50 = median(s.p50);
        const p99 = median(s.p99);
        rows.push({
          target: t.name, mode, rps, p50, p99, errors: s.errors, non2xx: s.non2xx,
          rpsRatio: rps / baseRps, p50Ratio: p50 / baseP50, p99Ratio: p99 / baseP99, rounds: s.rps,
        });
      }
    }
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
  }
  return rows;
}
