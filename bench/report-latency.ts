/**
 * Section 6 of docs/BENCHMARKS.md (reload latency, issue 23) and its verdicts, from the
 * latency scenario (bench/scenarios/latency.ts). Hand-written analysis of the figures lives
 * in bench/notes-latency.md and is rendered after the tables.
 */
import type { LatencyResults, Verdict } from './results.js';
import type { LatencyPass, LatencyRow, PhaseFigures, Shape } from './scenarios/latency.js';

const f0 = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? Math.round(n).toString() : '–');
const f1 = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(2) : '–');

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const passOf = (row: LatencyRow | undefined, shape: Shape): LatencyPass | undefined => row?.passes.find((p) => p.shape === shape);
const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The median over rounds of `key`'s ratio for `shape`. */
function ratioOf(rows: LatencyRow[], key: string, shape: Shape): number {
  return median(rows.filter((r) => r.key === key).map((r) => passOf(r, shape)?.ratio ?? Number.NaN));
}

export function latencyVerdicts(l: LatencyResults): Verdict[] {
  const out: Verdict[] = [];
  const rows = l.rows;
  for (const shape of ['paced', 'saturating'] as Shape[]) {
    const mine = rows.filter((r) => r.key === 'hitless').map((r) => passOf(r, shape)).filter((p): p is LatencyPass => p !== undefined);
    if (mine.length === 0) continue;
    const ratio = ratioOf(rows, 'hitless', shape);
    const haproxy = Math.min(ratioOf(rows, 'haproxy', shape), ratioOf(rows, 'haproxy-icor', shape));
    const what = shape === 'paced' ? `${mine[0]!.connections} paced keep-alive users` : `saturating load (${mine[0]!.connections} keep-alive connections)`;
    out.push({
      target: `reload latency, ${what}, 9 reloads: hitless p99 in reload windows <= 1.5x steady`,
      met: ratio <= 1.5,
      measured: `${f2(ratio)}x (${mine.map((p) => `${f1(p.load.reload.p99)} vs ${f1(p.load.steady.p99)} ms`).join('; ')}; load average ${mine.map((p) => `${f2(p.loadavg.start)}→${f2(p.loadavg.end)}`).join(', ')})`,
    });
    if (Number.isFinite(haproxy)) {
      out.push({
        target: `reload latency, ${what}: hitless's ratio not above HAProxy -W's in the same run`,
        met: ratio <= haproxy,
        measured: `hitless ${f2(ratio)}x, HAProxy ${f2(ratioOf(rows, 'haproxy', shape))}x, with idle-close-on-response ${f2(ratioOf(rows, 'haproxy-icor', shape))}x`,
      });
    }
    const failed = mine.reduce((a, p) => a + p.load.all.failed + p.load.all.non2xx, 0);
    const reopened = mine.reduce((a, p) => a + (p.opened - p.connections), 0);
    out.push({
      target: `reload latency, ${what}: hitless 0 failed, no connection re-opened`,
      met: failed === 0 && reopened === 0,
      measured: `${failed} failed of ${mine.reduce((a, p) => a + p.load.all.requests, 0)}, ${reopened} re-opened`,
    });
  }
  return out;
}

function passCells(p: LatencyPass | undefined): string[] {
  if (!p) return ['–', '–', '–', '–', '–', '–', '–'];
  const failed = p.load.all.failed + p.load.all.non2xx;
  return [
    `${f0(p.reloadMs.median)}`,
    `${failed === 0 ? '0' : `**${failed}**`} / ${p.load.all.requests}`,
    f1(p.reopenedPerReload),
    `${f1(p.load.steady.p99)} / ${f1(p.load.reload.p99)}`,
    `**${f2(p.ratio)}**${p.paired ? ` (per reload ${f2(p.paired.median)}, ${f2(p.paired.min)}–${f2(p.paired.max)})` : ''}`,
    f1(p.reloadP999),
    `${f2(p.loadavg.start)} → ${f2(p.loadavg.end)}`,
  ];
}

function bootCell(p: LatencyPass | undefined): string {
  return p?.boot && p.boot.samples > 0 ? `${f0(p.boot.readyMs.median)} / ${f0(p.boot.cpuMs.median)}` : '–';
}

function shapeTable(rows: LatencyRow[], shape: Shape, rounds: number): string {
  return table(
    ['target', ...(rounds > 1 ? ['round'] : []), 'reload ms (median)', 'failed / requests', 're-opened per reload', 'p99 ms steady / reload windows', 'ratio', 'p99.9 ms reload windows', 'new worker boot ms / CPU ms (median)', 'ms in transit (median / p99)', 'load average (1 min) start → end'],
    rows.map((r) => {
      const p = passOf(r, shape);
      const cells = passCells(p);
      const transit = p?.transitMs ? `${f1(p.transitMs.median)} / ${f1(p.transitMs.p99)}` : '–';
      return [r.target, ...(rounds > 1 ? [String(r.round)] : []), ...cells.slice(0, 6), bootCell(p), transit, cells[6]!];
    }),
  );
}

/** The hitless targets whose phase split section 6 shows (every lever, the configurations, none). */
const PHASE_KEYS = ['hitless', 'hitless-rr', 'hitless-semi4', 'hitless-warm5000-semi4', 'hitless-warm1000', 'hitless-heap', 'hitless-warm1000-heap', 'hitless-rolling', 'hitless-warm5000', 'hitless-v8-nice', 'hitless-no-maglev', 'hitless-no-spread', 'hitless-none'];

/**
 * Where the window p99 is made (hitless rows that have the phase split): p99 (requests) of
 * each phase, the hand-over's split by the generation that answered, and the first request
 * of each connection after it moved.
 */
function phaseTable(rows: LatencyRow[], shape: Shape, rounds: number): string | undefined {
  const cell = (x: { requests: number; p99: number } | undefined): string => (x && x.requests > 0 ? `${f1(x.p99)} (${x.requests})` : '–');
  const shown = rows.filter((r) => PHASE_KEYS.includes(r.key) && passOf(r, shape)?.phases !== undefined);
  if (shown.length === 0) return undefined;
  // Runs before 2026-12-04 afternoon have no split by generation: their columns are left out.
  const split = shown.some((r) => passOf(r, shape)?.phases?.moved !== undefined);
  // Runs from 2026-12-04 evening on count the window's requests over 1.5× the steady p99.
  const counted = shown.some((r) => passOf(r, shape)?.phases?.over !== undefined);
  const over = (o: PhaseFigures['over']): string => (o ? `${o.boot} / ${o.handoverOld} / ${o.handoverNew} / ${o.rest} (1%: ${o.allowed})` : '–');
  const lines = shown.map((r) => {
    const p = passOf(r, shape)!;
    const ph = p.phases!;
    return [r.target, ...(rounds > 1 ? [String(r.round)] : []), f1(p.load.steady.p99), cell(ph.boot), cell(ph.handover), ...(split ? [cell(ph.handoverOld), cell(ph.handoverNew)] : []), cell(ph.rest), ...(split ? [cell(ph.moved)] : []), ...(counted ? [over(ph.over)] : [])];
  });
  return (
    `**Where the window p99 is made (${shape === 'paced' ? 'paced users' : 'saturating load'})**: p99 ms (requests) of the reload windows cut at the master's events: boot (reload-start → reload-ready), hand-over (reload-draining → reload-drained)` +
    (split ? ', split by the generation that answered (`x-generation`), the rest; and the first request of each connection on its new generation, wherever in the window.' : ', and the rest.') +
    (counted ? ' Over 1.5×: the window\'s requests slower than 1.5× the steady p99, boot / hand-over old / hand-over new / rest; the goal holds when their sum is at most 1% of the window\'s requests.' : '') +
    '\n\n' +
    table(['target', ...(rounds > 1 ? ['round'] : []), 'steady', 'boot', 'hand-over', ...(split ? ['hand-over, old generation', 'hand-over, new generation'] : []), 'rest', ...(split ? ['first after moving'] : []), ...(counted ? ['over 1.5×'] : [])], lines)
  );
}

/** What each lever bought: the all-levers row against the row without that one lever (medians over rounds). */
function leverTable(rows: LatencyRow[], prefix: string, label: string): string | undefined {
  const all = prefix;
  if (!rows.some((r) => r.key === all)) return undefined;
  const levers: Array<[string, string]> = [
    [`${prefix}-no-nice`, 'boot priority (bootNice 10)'], [`${prefix}-boot-all`, 'one boot at a time (bootConcurrency auto; shown: all at once → one at a time)'], [`${prefix}-no-cache`, 'compile cache'], [`${prefix}-no-warmup`, 'warm-up'],
    [`${prefix}-warm1000`, 'warm-up once rather than ×1000 (shown: ×1000 → once)'], [`${prefix}-rolling`, 'strategy all rather than rolling (shown: one worker at a time → all at once)'], [`${prefix}-spread2`, 'hand-over paced ×48 for 5 s (shown: ×2 for 3 s → ×48 for 5 s)'],
    [`${prefix}-no-left`, 'hand-over paced to end within the 5 s (shown: ×48 for 5 s, then full speed → within 5 s)'], [`${prefix}-fork-late`, 'boot priority from the fork (shown: lowered after the fork → forked lowered)'],
    [`${prefix}-no-session`, 'boot priority for the session too (autogroup; shown: threads only → threads and session)'], [`${prefix}-no-spread`, 'hand-over spread'], [`${prefix}-window4`, 'hand-over window 1 and spread (was 4, full speed)'], [`${prefix}-none`, 'every lever'],
    // Not hitless's: a flag of the worker's own node command, shown added to every lever.
    [`${prefix}-heap`, 'the app\'s `node --initial-old-space-size=64` (shown: every lever → every lever and the flag)'],
  ];
  const lines = levers.filter(([k]) => rows.some((r) => r.key === k)).map(([k, name]) => {
    // Every row reads "without → with": for an added flag, the all-levers row is the "without".
    const [from, to] = k === `${prefix}-heap` ? [all, k] : [k, all];
    const cell = (shape: Shape): string => `${f2(ratioOf(rows, from, shape))}x → ${f2(ratioOf(rows, to, shape))}x`;
    const boot = (key: string): number => median(rows.filter((r) => r.key === key).map((r) => passOf(r, 'paced')?.boot?.cpuMs.median ?? Number.NaN));
    const ready = (key: string): number => median(rows.filter((r) => r.key === key).map((r) => passOf(r, 'paced')?.boot?.readyMs.median ?? Number.NaN));
    return [name, cell('paced'), cell('saturating'), `${f0(ready(from))} → ${f0(ready(to))} ms`, `${f0(boot(from))} → ${f0(boot(to))} ms`];
  });
  return lines.length
    ? `**What each lever bought (${label})**: the ratio (p99 in reload windows ÷ steady p99) without the lever → with every lever, and the new workers' boot (spawn → READY, and CPU at READY) in the paced pass; medians over rounds.\n\n` +
        table(['lever', 'paced users', 'saturating', 'boot (spawn → READY)', 'boot CPU'], lines)
    : undefined;
}

/** Section 6 of docs/BENCHMARKS.md. */
export function latencyMarkdown(l: LatencyResults, notes: string): string {
  const m = l.machine;
  const o = l.options;
  const app = l.rows.filter((r) => r.group === 'app');
  const next = l.rows.filter((r) => r.group === 'next');
  const parts: string[] = [];
  parts.push(
    `## 6. Reload latency\n\n` +
      `What a reload costs clients in latency (issue 23): p99 of the requests inside reload windows ÷ p99 of the steady ones, same client, same pass. Measured on ${l.date} with\n\n` +
      `\`\`\`sh\nnpm run build && ${l.command.replace(/^npm run bench --/, 'node build/bench/run.js')}\n\`\`\`\n\n` +
      `${m.nproc} cores shared with other engineers' test suites; the 1-minute load average is given for every pass (hitless ${m.hitlessCommit}, node ${m.node}, PM2 ${m.pm2}, HAProxy ${m.haproxy ?? '–'}` +
      `${l.resultsFile ? `; raw numbers: [${l.resultsFile}](../${l.resultsFile})` : ''}).\n\n` +
      `Every target runs two passes on a fresh instance, each with ${o.reloads} reloads${o.gapMs ? `, each requested ${o.gapMs / 1000} s after the previous one's window ended,` : ` requested ${o.everyMs / 1000} s apart (or as soon as the previous one ended)`} after ${o.leadMs / 1000} s of steady load, then ${o.tailMs / 1000} s more: ` +
      `**paced** = ${o.users} keep-alive users, each its own connection, POSTing and thinking ${o.thinkMs[0]}–${o.thinkMs[1]} ms (the traffic of section 5a); **saturating** = ${o.saturating} keep-alive connections without think time. ` +
      `Reload window = from the reload request until ${o.windowTailMs / 1000} s after the old processes are gone (observed through /proc, the same for every target); steady = the rest after the first ${o.steadyAfterMs / 1000} s${o.settleMs ? ` except the ${o.settleMs / 1000} s after each window (neither steady nor reload), so steady requests are measured between the reloads, under the same machine as the windows` : ''}. ` +
      (l.rows.some((r) => r.passes.some((p) => p.paired)) ? `Ratio = p99 of all window requests ÷ p99 of all steady ones; "per reload" = each window's p99 ÷ that of the steady gap right before it, median and range over the ${o.reloads} reloads (paired in time: a burst of other work on the machine moves one pair, not every ratio). ` : '') +
      `hitless: 2 workers, SIGHUP, hand-over on (the default). HAProxy: \`haproxy -W\` (master-worker), reloaded by SIGUSR2 (seamless: \`expose-fd listeners\`, \`hard-stop-after 10s\`) in front of ${o.workers} plain node workers of the same app, which are not restarted. PM2: cluster mode, \`pm2 reload\` (section 2's configuration, the app with the in-app library). ` +
      `"Boot" is the new workers' spawn → READY and their CPU time at READY (from /proc), hitless only. A failed request (reset, closed, timed out) has no latency and is counted apart.`,
  );
  if (app.length) {
    for (const [title, shape] of [['6a. The benchmark app: paced users', 'paced'], ['6b. The benchmark app: saturating load', 'saturating']] as const) {
      const phases = phaseTable(app, shape, o.rounds);
      parts.push(`### ${title}\n\n${shapeTable(app, shape, o.rounds)}${phases ? `\n\n${phases}` : ''}`);
    }
    const levers = leverTable(app, 'hitless', 'the benchmark app');
    if (levers) parts.push(levers);
  }
  if (next.length) {
    parts.push(
      `### 6c. Next.js \`next start\` under hitless\n\nThe Next.js production build of the framework tests (test/frameworks/apps/next, App Router, one page and one route handler; built in ${l.nextDir ?? '–'}), run unmodified through the preload, 2 workers; the load requests its route handler \`/gen\`. ` +
        `A Next.js worker serves about a tenth of the benchmark app's rate here, so the paced pass has ${o.nextUsers} users and the saturating one ${o.nextSaturating} connections. Warm-up: \`/\` and \`/gen\`.\n\n` +
        `Paced users:\n\n${shapeTable(next, 'paced', o.rounds)}\n\nSaturating load:\n\n${shapeTable(next, 'saturating', o.rounds)}`,
    );
    const levers = leverTable(next, 'next', 'Next.js');
    if (levers) parts.push(levers);
  }
  if (l.boot?.length) {
    parts.push(
      `### 6d. Boot with and without the compile cache

` +
        `Each app started alone, without load, ${l.boot[0]!.boots} times with \`NODE_COMPILE_CACHE\` naming one folder and ${l.boot[0]!.boots} times without, alternately, on each Node version; the cache was filled by one boot before (as the first generation fills it under the master). ` +
        `Ready = spawn → first answer to its route (\`/gen\` for Next.js); CPU = user + system time of the process by then (/proc).

` +
        table(['app', 'node', 'compile cache', 'ready ms (median / max)', 'CPU ms (median / max)', 'the boot that filled it: ready / CPU ms', 'cache size'],
          l.boot.map((b) => [b.app, b.node, b.cache, `${f0(b.readyMs.median)} / ${f0(b.readyMs.max)}`, `${f0(b.cpuMs.median)} / ${f0(b.cpuMs.max)}`,
            b.firstFill ? `${f0(b.firstFill.readyMs)} / ${f0(b.firstFill.cpuMs)}` : '–', b.cacheBytes === undefined ? '–' : `${(b.cacheBytes / 1e6).toFixed(1)} MB`])),
    );
  }
  if (notes.trim()) parts.push(notes.trim());
  return parts.join('\n\n');
}
