/**
 * `npm run bench [-- --quick] [-- --only reload,cost] [-- --from bench/results/<date>.json]`: runs the scenarios against bare
 * node, hitless, PM2 cluster mode and a naive restart on 127.0.0.1, writes
 * bench/results/<date>.json, docs/bench-reload.svg and docs/BENCHMARKS.md (quick
 * mode writes bench/results/<date>-quick.json only, unless --docs; --from re-renders the
 * docs from a saved run without measuring).
 * Everything started is killed at the end, also on error (process groups, `pm2 kill`).
 */
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killAllGroups, run } from './proc.js';
import { wrkVersion } from './wrk.js';
import { throughput } from './scenarios/throughput.js';
import { reloadUnderLoad, type ReloadRow, type ReloadVariant, type TargetKind } from './scenarios/reload.js';
import { appBoot, reloadCost, type CostRow } from './scenarios/cost.js';
import { footprint } from './scenarios/footprint.js';
import { pm2Version } from './targets/pm2.js';
import { repoRoot } from './targets/target.js';
import { chartSvg } from './svg.js';
import { markdown, verdicts, type Results } from './report.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyArg = argv[argv.indexOf('--only') + 1];
const only = argv.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : undefined;
const wants = (s: string): boolean => !only || only.has(s);
const log = (line: string): void => void process.stdout.write(line + '\n');

const plan = quick
  ? {
      throughput: { connections: 50, durationMs: 1000, rounds: 1, warmupMs: 1000 },
      reload: { durationMs: 5000, everyMs: 2000, workers: 2, wrkConnections: 40, loadConnections: 10 },
      variants: [{ name: 'keep-alive, 0 ms', handlerMs: 0, keepAlive: true, slow: false }],
      reloadTargets: ['hitless-cli', 'pm2-plain', 'naive'] as TargetKind[],
      boot: 3,
      cost: 3,
      costTargets: [['hitless-sighup', 1], ['naive', 1]] as Array<[TargetKind, number]>,
      leak: { reloads: 20, warmup: 20 },
    }
  : {
      throughput: { connections: 50, durationMs: 5000, rounds: 3, warmupMs: 2000 },
      reload: { durationMs: 30_000, everyMs: 2000, workers: 2, wrkConnections: 40, loadConnections: 10 },
      variants: [
        { name: 'keep-alive, 0 ms', handlerMs: 0, keepAlive: true, slow: false },
        { name: 'keep-alive, 50 ms', handlerMs: 50, keepAlive: true, slow: false },
        { name: 'keep-alive, 0 ms + 1 s request at each reload', handlerMs: 0, keepAlive: true, slow: true },
        { name: 'Connection: close, 0 ms', handlerMs: 0, keepAlive: false, slow: false },
      ],
      reloadTargets: ['hitless-cli', 'hitless-sighup', 'pm2', 'pm2-plain', 'naive'] as TargetKind[],
      boot: 10,
      cost: 20,
      costTargets: [['hitless-sighup', 1], ['hitless-cli', 1], ['hitless-sighup', 2], ['pm2', 2], ['naive', 1]] as Array<[TargetKind, number]>,
      // 50 warm-up reloads: V8 tiers the reload path up to optimised code within the first
      // ~20, which pages ~4 MB of the node binary (the optimising compiler) into RSS once.
      leak: { reloads: 500, warmup: 50 },
    };

async function commit(): Promise<string> {
  const head = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot });
  const dirty = await run('git', ['status', '--porcelain', '--', 'src', 'bench'], { cwd: repoRoot });
  return head.stdout.trim() + (dirty.stdout.trim() ? ' (with uncommitted changes)' : '');
}

/** Write the chart and docs/BENCHMARKS.md from one run's results. */
function writeDocs(results: Results, resultsFile: string): void {
  let chart: string | undefined;
  const first = results.reload[0]?.variant.name;
  const charted = results.reload.filter((x) => x.variant.name === first && x.kind !== 'hitless-sighup');
  if (charted.length) {
    chart = 'bench-reload.svg';
    const panels = charted.map((x) => ({ title: `${x.target}, ${x.reloads} reloads`, ...x.chart }));
    writeFileSync(join(repoRoot, 'docs', chart), chartSvg(`Reload every 2 s under load (${first})`, panels));
  }
  const notesPath = join(repoRoot, 'bench', 'notes.md');
  const notes = existsSync(notesPath) ? readFileSync(notesPath, 'utf8') : '';
  writeFileSync(join(repoRoot, 'docs', 'BENCHMARKS.md'), markdown(results, resultsFile, chart, notes));
  log('wrote docs/BENCHMARKS.md');
}

async function main(): Promise<number> {
  const fromArg = argv[argv.indexOf('--from') + 1];
  if (argv.includes('--from') && fromArg) {
    // Re-render the docs from a saved run (after editing bench/notes.md or the report).
    const saved = JSON.parse(readFileSync(join(repoRoot, fromArg), 'utf8')) as Results;
    writeDocs({ ...saved, targets: verdicts(saved) }, fromArg);
    return 0;
  }
  const wrk = await wrkVersion();
  if (!wrk) {
    log('bench: wrk is not installed; on Debian/Ubuntu: apt-get update && apt-get install -y wrk');
    return 2;
  }
  const date = new Date().toISOString().slice(0, 10);
  const command = `npm run bench${quick ? ' -- --quick' : ''}`;
  const partial: Omit<Results, 'targets'> = {
    date,
    quick,
    command,
    machine: {
      nproc: availableParallelism(),
      cpu: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      node: process.version,
      pm2: pm2Version(),
      wrk,
      hitlessCommit: await commit(),
      loadavg: { start: loadavg()[0] ?? 0, end: 0 },
    },
    throughput: [],
    reload: [],
    boot: undefined,
    cost: [],
    footprint: undefined,
  };
  const t0 = Date.now();
  if (wants('throughput')) {
    log('1. steady throughput');
    partial.throughput = await throughput({ ...plan.throughput, log });
  }
  if (wants('reload')) {
    log('2. reload under load');
    const rows: ReloadRow[] = [];
    for (const variant of plan.variants as ReloadVariant[]) {
      for (const kind of plan.reloadTargets) rows.push(await reloadUnderLoad(kind, variant, { ...plan.reload, log }));
    }
    partial.reload = rows;
  }
  if (wants('cost')) {
    log('3. reload cost');
    partial.boot = await appBoot(plan.boot);
    log(`  app boot: median ${partial.boot.medianMs.toFixed(1)} ms`);
    const rows: CostRow[] = [];
    for (const [kind, workers] of plan.costTargets) {
      const row = await reloadCost(kind, workers, plan.cost, partial.boot.medianMs);
      log(`  ${row.target}: median ${row.medianMs.toFixed(1)} ms, max ${row.maxMs.toFixed(1)} ms, beyond boot ${row.beyondBootMs.toFixed(1)} ms`);
      rows.push(row);
    }
    partial.cost = rows;
  }
  if (wants('footprint')) {
    log('4. footprint and leaks');
    partial.footprint = await footprint(plan.leak.reloads, plan.leak.warmup, log);
  }
  partial.machine.loadavg.end = loadavg()[0] ?? 0;
  const results: Results = { ...partial, targets: verdicts(partial) };

  const resultsDir = join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  // A partial run (--only) never overwrites the day's full results.
  const suffix = (quick ? '-quick' : '') + (only ? `-only-${[...only].join('-')}` : '');
  const resultsFile = `bench/results/${date}${suffix}.json`;
  writeFileSync(join(repoRoot, resultsFile), JSON.stringify(results, null, 1) + '\n');
  log(`wrote ${resultsFile}`);
  if ((!quick && !only) || argv.includes('--docs')) writeDocs(results, resultsFile);
  for (const v of results.targets) log(`${v.met ? 'MET    ' : 'NOT MET'} ${v.target}: ${v.measured}`);
  log(`done in ${Math.round((Date.now() - t0) / 1000)} s`);
  return 0;
}

main()
  .then((code) => {
    killAllGroups();
    process.exitCode = code;
  })
  .catch((err: unknown) => {
    killAllGroups();
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
