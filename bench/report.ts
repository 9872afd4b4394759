/**
 * Turns one run's results into the target verdicts and docs/BENCHMARKS.md.
 */
import type { ReloadRow } from './scenarios/reload.js';
import { handoverMarkdown, handoverVerdicts } from './report-handover.js';
import { latencyMarkdown, latencyVerdicts } from './report-latency.js';
import type { Results, Verdict } from './results.js';

const isHitless = (name: string): boolean => name.startsWith('hitless');
const wrkFailed = (r: ReloadRow): number => r.wrk.errors.connect + r.wrk.errors.read + r.wrk.errors.write + r.wrk.errors.timeout;
const slowFailed = (r: ReloadRow): number =>
  r.slow ? Object.entries(r.slow).reduce((a, [k, v]) => a + (k === 'ok' ? 0 : (v ?? 0)), 0) : 0;
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');

/** Check the targets against the measurements. */
export function verdicts(r: Omit<Results, 'targets'>): Verdict[] {
  const out: Verdict[] = [];
  const hReload = r.reload.filter((x) => isHitless(x.target));
  if (hReload.length) {
    const bad = hReload.filter((x) => wrkFailed(x) + x.wrk.non2xx + x.load.all.failed + x.load.all.non2xx + slowFailed(x) > 0 || x.reloadErrors.length);
    out.push({
      target: '0 failed and 0 non-2xx in every hitless reload scenario',
      met: bad.length === 0,
      measured: bad.length === 0
        ? `0 of ${hReload.reduce((a, x) => a + x.wrk.requests + x.load.all.requests, 0)} requests failed over ${hReload.reduce((a, x) => a + x.reloads, 0)} reloads`
        : bad.map((x) => `${x.target} ${x.variant.name}: wrk ${wrkFailed(x)} failed/${x.wrk.non2xx} non-2xx, loadgen ${x.load.all.failed}/${x.load.all.non2xx}, slow ${slowFailed(x)}, reload errors ${x.reloadErrors.length}`).join('; '),
    });
    const p99 = hReload.map((x) => ({ x, ratio: x.load.reload.p99 / x.load.steady.p99 }));
    const worst = p99.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    out.push({
      target: 'p99 in reload windows <= 2x steady p99 (hitless)',
      met: p99.every((p) => p.ratio <= 2),
      measured: `worst ${f2(worst.ratio)}x (${worst.x.target}, ${worst.x.variant.name}: ${f1(worst.x.load.reload.p99)} vs ${f1(worst.x.load.steady.p99)} ms)`,
    });
  }
  const one = r.throughput.filter((x) => x.target === 'hitless 1w');
  if (one.length) {
    out.push({
      target: 'hitless 1-worker throughput >= 0.97x bare node',
      met: one.every((x) => x.rpsRatio >= 0.97),
      measured: one.map((x) => `${x.mode} ${x.rpsRatio.toFixed(3)}x`).join(', '),
    });
  }
  const hCost = r.cost.filter((x) => isHitless(x.target));
  if (hCost.length) {
    // Judged where the request reaches the master at once (SIGHUP) and on the master's own
    // reload time; a `hitless reload` row also contains starting the CLI, a Node process,
    // which is the client's cost, not the reload's: shown, not judged.
    const judged = hCost.filter((x) => x.target.includes('SIGHUP'));
    const cliRows = hCost.filter((x) => !x.target.includes('SIGHUP'));
    out.push({
      target: 'reload cost <= 50 ms median beyond the app\'s own boot (hitless)',
      met: judged.length > 0 && judged.every((x) => x.beyondBootMs <= 50) && hCost.every((x) => (x.masterBeyondBootMs ?? 0) <= 50),
      measured: [
        ...judged.map((x) => `${x.target}: ${f1(x.beyondBootMs)} ms from the request (master's own: ${f1(x.masterBeyondBootMs ?? Number.NaN)} ms)`),
        ...cliRows.map((x) => `${x.target} via \`hitless reload\`: ${f1(x.beyondBootMs)} ms including the CLI's own start-up (master's own: ${f1(x.masterBeyondBootMs ?? Number.NaN)} ms)`),
      ].join(', '),
    });
  }
  if (r.footprint) {
    const fp = r.footprint;
    out.push({ target: 'master RSS <= 50 MB', met: fp.hitlessMasterRssMb <= 50, measured: `${f1(fp.hitlessMasterRssMb)} MB (PM2 daemon ${f1(fp.pm2DaemonRssMb)} MB)` });
    out.push({
      target: `after ${fp.leak.reloads} reloads: master fd count unchanged`,
      met: fp.leak.fdsAfter === fp.leak.fdsBefore,
      measured: `${fp.leak.fdsBefore} → ${fp.leak.fdsAfter}`,
    });
    out.push({
      target: `after ${fp.leak.reloads} reloads: master RSS grown <= 2 MB`,
      met: fp.leak.rssGrowthMb <= 2,
      measured: `${f1(fp.leak.rssBeforeMb)} → ${f1(fp.leak.rssAfterMb)} MB (${f1(fp.leak.rssGrowthMb)} MB)`,
    });
  }
  if (r.handover) out.push(...handoverVerdicts(r.handover));
  if (r.latency) out.push(...latencyVerdicts(r.latency));
  return out;
}

export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** docs/BENCHMARKS.md for one run. `notes` is hand-written analysis kept between runs. */
export function markdown(r: Results & { latencyNotes?: string }, resultsFile: string, chartFile: string | undefined, notes: string): string {
  const m = r.machine;
  const parts: string[] = [];
  parts.push(`# Benchmarks\n\nhitless beside bare node, PM2 cluster mode and a naive stop-and-start, measured side by side in one run on ${r.date}${r.quick ? ' (QUICK MODE: short runs, indicative only)' : ''}. Raw numbers: [${resultsFile}](../${resultsFile}).` +
    (r.handover?.resultsFile && r.handover.resultsFile !== resultsFile
      ? ` Section 5 (connection hand-over) was measured in a later run of its own scenarios only, on ${r.handover.date}: [${r.handover.resultsFile}](../${r.handover.resultsFile}); its command and machine are in that section.`
      : '') +
    (r.latency?.resultsFile && r.latency.resultsFile !== resultsFile
      ? ` Section 6 (reload latency) was measured in a run of its own on ${r.latency.date}: [${r.latency.resultsFile}](../${r.latency.resultsFile}); its command, machine and load are in that section.`
      : ''));
  parts.push(`Reproduce (Linux, \`wrk\` installed: \`apt-get install -y wrk\`):\n\n\`\`\`sh\nnpm ci && npm run build && ${r.command}\n\`\`\``);
  parts.push(`## Targets\n\n${table(['target', 'met', 'measured'], r.targets.map((v) => [v.target, v.met ? 'yes' : '**no**', v.measured]))}`);
  if (notes.trim()) parts.push(notes.trim());
  if (r.throughput.length) {
    parts.push(
      `## 1. Steady throughput\n\nwrk, 1 thread, same app (0 ms handler), median of rounds; ratios are to bare node in the same run.\n\n` +
        table(
          ['mode', 'target', 'req/s', 'x bare', 'p50 ms', 'x bare', 'p99 ms', 'x bare', 'errors'],
          r.throughput.map((x) => [x.mode, x.target, Math.round(x.rps).toString(), f2(x.rpsRatio), f2(x.p50), f2(x.p50Ratio), f2(x.p99), f2(x.p99Ratio), String(x.errors + x.non2xx)]),
        ),
    );
  }
  if (r.reload.length) {
    const rows = r.reload.map((x) => [
      x.variant.name, x.target, String(x.reloads),
      String(x.wrk.requests), `${wrkFailed(x)} (c ${x.wrk.errors.connect} / r ${x.wrk.errors.read} / w ${x.wrk.errors.write} / t ${x.wrk.errors.timeout})`, String(x.wrk.non2xx),
      String(x.load.all.requests), `${x.load.all.failed} (reset ${x.load.all.byKind.reset} / refused ${x.load.all.byKind.refused} / timeout ${x.load.all.byKind.timeout} / closed ${x.load.all.byKind.closed + x.load.all.byKind.epipe + x.load.all.byKind.other})`, String(x.load.all.non2xx),
      x.slow ? `${x.slow.ok ?? 0}/${Object.values(x.slow).reduce((a, b) => a + (b ?? 0), 0)}` : '–',
      `${f1(x.load.steady.p99)} / ${f1(x.load.reload.p99)}`,
      `${Math.round(x.reloadMs.median)} / ${Math.round(x.reloadMs.max)}`,
    ]);
    parts.push(
      `## 2. Reload under load\n\nA reload every 2 s during the load; wrk and the repo's load client (bench/loadgen.ts) run side by side and both count a request lost on a reset or closed connection as failed, never re-sending it. wrk's failed = its socket errors: c(onnect) / r(ead: reset or closed) / w(rite: wrk reports its reconnects refused by a restarting naive app here) / t(imeout). "slow ok" is the 1 s request put in flight before every reload. Reload window = from the request to the old generation gone (observed through /proc).\n\n` +
        table(['load', 'target', 'reloads', 'wrk req', 'wrk failed', 'wrk non-2xx', 'loadgen req', 'loadgen failed', 'non-2xx', 'slow ok', 'p99 steady / reload ms', 'reload ms median / max'], rows),
    );
    if (chartFile) parts.push(`![latency and failures over time with reloads marked](${chartFile})`);
    const lossy = r.reload.filter((x) => wrkFailed(x) > 0 && x.kind !== 'naive');
    if (lossy.length) {
      parts.push(
        `**Load client checked against wrk.** Where requests were lost on reset or closed connections, both clients should lose about the same number per connection (the naive restart is left out: wrk retries a refused connect at once while the load client waits 10 ms, so their refused counts measure retry rates):\n\n` +
          table(
            ['load', 'target', 'wrk failed per connection', 'loadgen failed per connection'],
            lossy.map((x) => {
              // Runs before connections were recorded used 40 (wrk) and 10 (load client).
              const c = x.connections ?? { wrk: 40, load: 10 };
              return [x.variant.name, x.target, f2(wrkFailed(x) / c.wrk), f2(x.load.all.failed / c.load)];
            }),
          ),
      );
    }
  }
  if (r.cost.length) {
    parts.push(
      `## 3. Reload cost\n\nNo load; back-to-back reloads; from the reload request to every old process gone and as many new ones serving. The app's own boot (spawn → serving) alone: median ${f1(r.boot?.medianMs ?? Number.NaN)} ms, max ${f1(r.boot?.maxMs ?? Number.NaN)} ms.\n\n` +
        table(
          ['target', 'reloads', 'median ms', 'max ms', 'median beyond app boot ms', 'master\'s own reload ms (median) / beyond boot'],
          r.cost.map((x) => [x.target, String(x.reloads), f1(x.medianMs), f1(x.maxMs), f1(x.beyondBootMs), x.masterMedianMs === undefined ? '–' : `${f1(x.masterMedianMs)} / ${f1(x.masterBeyondBootMs ?? Number.NaN)}`]),
        ),
    );
  }
  if (r.footprint) {
    const fp = r.footprint;
    parts.push(
      `## 4. Footprint and leaks\n\n` +
        table(['measure', 'value'], [
          ['hitless master RSS, idle, 2 workers', `${f1(fp.hitlessMasterRssMb)} MB`],
          ['PM2 daemon RSS, idle, 2 instances', `${f1(fp.pm2DaemonRssMb)} MB`],
          [`master fds before / after ${fp.leak.reloads} reloads`, `${fp.leak.fdsBefore} / ${fp.leak.fdsAfter}`],
          [`master RSS at start / after ${fp.leak.warmup} warm-up reloads / after ${fp.leak.reloads} more`, `${f1(fp.leak.rssAtStartMb)} / ${f1(fp.leak.rssBeforeMb)} / ${f1(fp.leak.rssAfterMb)} MB`],
        ]),
    );
  }
  if (r.handover) parts.push(handoverMarkdown(r.handover));
  if (r.latency) parts.push(latencyMarkdown(r.latency, r.latencyNotes ?? ''));
  parts.push(
    `## Machine and versions\n\n` +
      table(['', ''], [
        ['CPUs (nproc)', String(m.nproc)], ['CPU', m.cpu], ['kernel', m.kernel], ['node', m.node], ['pm2', m.pm2], ['wrk', m.wrk],
        ['hitless commit', m.hitlessCommit], ['load average (1 min) at start / end', `${f2(m.loadavg.start)} / ${f2(m.loadavg.end)}`],
      ]),
  );
  return parts.join('\n\n') + '\n';
}
