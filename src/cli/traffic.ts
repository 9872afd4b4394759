/**
 * How traffic figures and canary comparisons read in the CLI: the traffic columns of
 * `hitless status`, its per-generation table, and the canary lines of `hitless reload`
 * and `hitless release`. Pure functions of the master's data.
 */
import { formatDuration } from '../config/duration.js';
import type { CanaryReport, ReloadOutcome, SideFigures, StatusSnapshot, TrafficFigures } from '../core/types.js';
import { renderTable } from '../text/table.js';
import { runs } from '../core/worker-state.js';

/**
 * Requests per second: whole numbers from 10 up.
 *
 * @example
 * rate(812.4); // '812'
 */
export function rate(n: number | undefined): string {
  if (n === undefined) return '-';
  return n >= 10 ? String(Math.round(n)) : n.toFixed(1);
}

/**
 * A share as a percentage; two decimals below 10%.
 *
 * @example
 * percent(0.0123); // '1.23%'
 */
export function percent(x: number | undefined): string {
  if (x === undefined) return '-';
  return `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`;
}

/**
 * Latency in ms: one decimal below 10 ms.
 *
 * @example
 * millis(3.14); // '3.1ms'
 */
export function millis(x: number | undefined): string {
  if (x === undefined) return '-';
  return x < 10 ? `${x.toFixed(1)}ms` : `${Math.round(x)}ms`;
}

/**
 * REQ/S, 5XX, P50, P99 cells of a worker or generation ('-' without figures).
 *
 * @example
 * trafficCells(worker.traffic); // ['257', '0.00%', '0.2ms', '21ms']
 */
export function trafficCells(f: TrafficFigures | undefined): string[] {
  if (f === undefined) return ['-', '-', '-', '-'];
  return [rate(f.rps), percent(f.errorRate), millis(f.p50Ms), millis(f.p99Ms)];
}

/** What a generation is doing right now, for the traffic table. */
function role(s: StatusSnapshot, generation: number, serving: boolean): string {
  if (serving) return 'serving';
  const mine = s.workers.filter((w) => w.generation === generation && runs(w));
  // Old generations, and a rejected canary on its way out.
  if (mine.length > 0 && mine.every((w) => w.state === 'draining')) return 'draining';
  if (s.reload?.generation === generation) return s.reload.phase === 'canary' ? 'canary' : 'starting';
  return 'draining';
}

/**
 * The per-generation traffic table (last 10 s; TOTAL since the generation started, by
 * status class), or undefined when no worker reported traffic.
 *
 * @example
 * const table = generationTraffic(snapshot); // "GENERATION  ROLE  RELEASE …"
 */
export function generationTraffic(s: StatusSnapshot): string | undefined {
  const gens = s.traffic?.generations ?? [];
  if (gens.length === 0) return undefined;
  // CONNS: connections open at the workers' last reports (a canary's moved and new ones).
  const header = ['GENERATION', 'ROLE', 'RELEASE', 'WORKERS', 'CONNS', 'REQ/S', '5XX', 'P50', 'P99', 'TOTAL 2xx/3xx/4xx/5xx'];
  const rows = gens.map((g) => {
    const t = g.figures.total;
    return [
      String(g.generation), role(s, g.generation, g.serving), g.release ?? '-', String(g.workers),
      g.figures.connections === undefined ? '-' : String(g.figures.connections), ...trafficCells(g.figures),
      `${t['2xx']}/${t['3xx']}/${t['4xx']}/${t['5xx']}`,
    ];
  });
  return renderTable([header, ...rows]);
}

/**
 * One side of a canary comparison.
 *
 * @example
 * sideLine(report.canary); // '530 responses, 5xx 9.80%, p50 0.4ms, p99 3.1ms'
 */
export function sideLine(f: SideFigures): string {
  return `${f.requests} response${f.requests === 1 ? '' : 's'}, 5xx ${percent(f.errorRate)}, p50 ${millis(f.p50Ms)}, p99 ${millis(f.p99Ms)}`;
}

/**
 * The running comparison as one progress phrase.
 *
 * @example
 * canaryProgress(event); // 'canary generation 8, 3 s of 30 s: 721 responses, 5xx 0.00% vs 0.00% serving, …'
 */
export function canaryProgress(r: CanaryReport): string {
  return `canary generation ${r.generation}, ${formatDuration(r.elapsedMs)} of ${formatDuration(r.durationMs)}: ` +
    `${r.canary.requests} responses, 5xx ${percent(r.canary.errorRate)} vs ${percent(r.baseline.errorRate)} serving, ` +
    `p99 ${millis(r.canary.p99Ms)} vs ${millis(r.baseline.p99Ms)}${latencyNote(r)}${connectionsPhrase(r.connections)}`;
}

/**
 * Why latency is or is not judged yet: "(limit 25ms)"; "(warming up: latency judged from
 * 2 s)" only during the warm-up; after it, without a limit, that the serving generation
 * answered nothing since (a canary with no traffic showed "warming up" for its whole
 * duration: issue 19).
 */
function latencyNote(r: CanaryReport): string {
  if (r.latencyLimitMs !== undefined) return ` (limit ${millis(r.latencyLimitMs)})`;
  // A master from before warmupMs was reported: say only what is sure.
  if (r.warmupMs === undefined) return ' (no latency limit yet)';
  if (r.elapsedMs < r.warmupMs) return ` (warming up: latency judged from ${formatDuration(r.warmupMs)})`;
  return ' (latency not judged yet: no serving-generation responses counted since the warm-up)';
}

/**
 * What the canary holds, for its lines: '; holds 9 connections, 9 moved from the serving generation'.
 *
 * @example
 * connectionsPhrase({ share: 1 / 3, moved: 9, returned: 0, lost: 0, held: 11 }); // '; holds 11 connections, 9 moved …'
 */
export function connectionsPhrase(c: CanaryReport['connections']): string {
  if (c === undefined) return '';
  const held = c.held === undefined ? '' : ` holds ${c.held} connection${c.held === 1 ? '' : 's'},`;
  // `moved` counts what the canary kept: one that died took its share with it, so those
  // are said as moved, then lost (a progress line before the death said them moved).
  const odd = `${c.returned ? `, ${c.returned} returned` : ''}${c.lost ? `, ${c.lost} of them lost with a canary worker that died` : ''}`;
  return `;${held} ${c.moved + c.lost} moved from the serving generation${odd}`;
}

/**
 * The canary's decision and both sets of figures, one line each; after a canary that did
 * not go live (`outcome` given), what became of its connections: handed back to the
 * generation that keeps serving, or lost.
 *
 * @example
 * for (const line of canaryLines(outcome.canary, outcome)) process.stderr.write(`${line}\n`);
 */
export function canaryLines(r: CanaryReport, outcome?: ReloadOutcome): string[] {
  const word = { pass: 'passed', fail: 'failed', inconclusive: 'was inconclusive', pending: 'is running' }[r.verdict];
  const lines = [
    `canary ${word} after ${formatDuration(r.elapsedMs)} (of ${formatDuration(r.durationMs)})`,
    `  canary   generation ${r.generation}: ${sideLine(r.canary)}${connectionsPhrase(r.connections)}`,
    `  serving  ${sideLine(r.baseline)}`,
  ];
  const c = outcome?.connections;
  if (outcome && !outcome.ok && c) {
    const n = (k: number, what: string): string => `${k} connection${k === 1 ? '' : 's'} ${what}`;
    // Connections lost earlier with a canary worker that died were said on the canary line;
    // a bare "0 lost" under it read as a contradiction (h17 F6).
    const before = r.connections?.lost ?? 0;
    const lost = before > 0 ? `${c.lost} more lost in the hand-back (${before} lost before, with the canary worker that died)` : `${c.lost} lost`;
    lines.push(`  back     ${n(c.handedOver, `handed back to generation ${outcome.generation}`)}, ${lost}` +
      `${c.returned ? `, ${c.returned} drained in place` : ''}${c.drained ? `, ${c.drained} closed by the canary` : ''}${c.cut ? `, ${c.cut} cut` : ''}`);
  }
  return lines;
}
