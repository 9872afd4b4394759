/**
 * `npm run bench [-- --quick] [-- --only reload,cost] [-- --from bench/results/<date>.json]`: runs the scenarios against bare
 * node, hitless, PM2 cluster mode and a naive restart on 127.0.0.1, writes
 * bench/results/<date>.json, docs/bench-reload.svg and docs/BENCHMARKS.md (quick
 * mode writes bench/results/<date>-quick.json only, unless --docs; --from re-renders the
 * docs from a saved run without measuring).
 * Scenarios (for --only): throughput, reload, cost, footprint, paced, handover10k. A
 * full-mode run of only `paced` and/or `handover10k` (connection hand-over) writes
 * bench/results/<date>-only-….json and renders its section 5 into the docs of the newest
 * full run (or `--base <file>`); `--from <full>.json,<hand-over>.json` re-renders both.
 * Everything started is killed at the end, also on error (process groups, `pm2 kill`).
 */
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killAllGroups, run } from './proc.js';
import { wrkVersion } from './wrk.js';
import { throughput } from './scenarios/throughput.js';
import { reloadUnderLoad, type ReloadRow, type ReloadVariant, type TargetKind } from './scenarios/reload.js';
import { appBoot, reloadCost, type CostRow } from './scenarios/cost.js';
import { footprint } from './scenarios/footprint.js';
import { pacedUsers, type PacedKind, type PacedRow } from './scenarios/paced.js';
import { idleHandover, type IdleRow, type IdleVariant } from './scenarios/handover10k.js';
import { reloadLatency, type Shape } from './scenarios/latency.js';
import { bootCost } from './scenarios/boot.js';
import { findNextApp } from './next-app.js';
import { haproxyVersion } from './targets/haproxy.js';
import { pm2Version } from './targets/pm2.js';
import { repoRoot } from './targets/target.js';
import { chartSvg } from './svg.js';
import { markdown, verdicts } from './report.js';
import type { Results } from './results.js';
import { labelProblem } from './args.js';

const argv = process.argv.slice(2);
const USAGE = `usage: node build/bench/run.js [--quick] [--only <scenarios>] [--docs]
       node build/bench/run.js --only latency [--targets <keys>] [--rounds <n>] [--shapes <paced,saturating>] [--other-cli <path>] [--next <dir>]
       node build/bench/run.js --only boot [--nodes <node,...>] [--boots <n>] [--next <dir>]
       node build/bench/run.js --from <full.json>[,<later.json>...]
  --only     comma-separated: throughput, reload, cost, footprint, paced, handover10k, latency, boot
  --base     the saved runs a partial run renders into (default: the newest full run)
  --shapes   latency only: the load shapes each target runs (default paced,saturating)
  --other-cli latency only: another build's build/src/cli/main.js; a target key with the suffix @other
             runs with it, in the same rotation (two builds side by side in one run)
  --label    a diagnostic run: saved as <date>-only-<scenarios>-<label>.json, docs left alone (unless --docs)
  --from     re-render docs/BENCHMARKS.md from saved runs, measuring nothing`;
const FLAGS_WITH_VALUE = new Set(['--only', '--from', '--targets', '--rounds', '--nodes', '--boots', '--next', '--base', '--label', '--shapes', '--other-cli']);
const SCENARIOS = ['throughput', 'reload', 'cost', 'footprint', 'paced', 'handover10k', 'latency', 'boot'];
const FLAGS = new Set([...FLAGS_WITH_VALUE, '--quick', '--docs']);
/** Refuses what it does not know before measuring anything: a typo must not start an hour-long run. */
function badArgs(): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return '';
    if (!FLAGS.has(a)) return `bench: unknown argument ${JSON.stringify(a)}`;
    if (FLAGS_WITH_VALUE.has(a)) {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) return `bench: ${a} needs a value`;
      const unknown = a === '--only' ? v.split(',').filter((x) => !SCENARIOS.includes(x)) : [];
      if (unknown.length) return `bench: no scenario ${unknown.join(', ')} (there are: ${SCENARIOS.join(', ')})`;
      const shapes = a === '--shapes' ? v.split(',').filter((x) => x !== 'paced' && x !== 'saturating') : [];
      if (shapes.length) return `bench: no load shape ${shapes.join(', ')} (there are: paced, saturating)`;
      const label = a === '--label' ? labelProblem(v) : undefined;
      if (label !== undefined) return `bench: ${label}`;
      i++;
    }
  }
  const otherCli = argValue('--other-cli');
  const other = (argValue('--targets') ?? '').split(',').some((k) => k.endsWith('@other'));
  if (other && otherCli === undefined) return 'bench: a target key with @other needs --other-cli <another build\'s build/src/cli/main.js>';
  if (otherCli !== undefined && !existsSync(otherCli)) return `bench: --other-cli: no such file ${otherCli}`;
  return undefined;
}
const quick = argv.includes('--quick');
const onlyArg = argv[argv.indexOf('--only') + 1];
const only = argv.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : undefined;
const wants = (s: string): boolean => !only || only.has(s);
const log = (line: string): void => void process.stdout.write(line + '\n');
/** `--targets a,b`: only these targets of the latency scenario; `--rounds n`: its rounds. */
const argValue = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);

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
      paced: { users: 1000, thinkMs: [0, 1200] as [number, number], reloads: 3, everyMs: 2000, leadMs: 4000, steadyAfterMs: 2500, tailMs: 2000, windowTailMs: 1000, workers: 2, wrkConnections: 2000 },
      pacedTargets: ['hitless-handover', 'hitless-no-handover', 'pm2'] as PacedKind[],
      idle: 2000,
      idleVariants: [{ handover: true }, { handover: false }] as IdleVariant[],
      latency: { users: 1000, thinkMs: [0, 1200] as [number, number], saturating: 50, nextUsers: 100, nextSaturating: 8, reloads: 3, everyMs: 2000, leadMs: 4000, steadyAfterMs: 2500, tailMs: 2000, windowTailMs: 1000, workers: 2, rounds: 1 },
      bootCost: { boots: 3 },
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
      paced: { users: 1000, thinkMs: [0, 1200] as [number, number], reloads: 9, everyMs: 2000, leadMs: 8000, steadyAfterMs: 2500, tailMs: 3000, windowTailMs: 1000, workers: 2, wrkConnections: 2000 },
      pacedTargets: ['hitless-handover', 'hitless-no-handover', 'pm2', 'pm2-plain'] as PacedKind[],
      idle: 10_000,
      // The library's own drain deadline (10 s by default) also bounds the hand-over; the
      // third row gives it the master's 30 s budget (minus a margin) to show the capacity.
      idleVariants: [{ handover: true }, { handover: true, appShutdownMs: 25_000, repeats: 3 }, { handover: false }] as IdleVariant[],
      // Issue 23: the same paced users (and a saturating load) against hitless with and without
      // each boot lever, HAProxy -W, PM2 and Next.js; Next.js serves ~1/10 of the bench app's rate.
      // 4 s of steady load between the windows (the first 1.5 s of it counted as neither): the
      // steady p99 is then taken across the run, as the windows are, not only before and after.
      latency: { users: 1000, thinkMs: [0, 1200] as [number, number], saturating: 50, nextUsers: 100, nextSaturating: 8, reloads: 9, everyMs: 2000, gapMs: 4000, settleMs: 1500, leadMs: 8000, steadyAfterMs: 2500, tailMs: 3000, windowTailMs: 1000, workers: 2, rounds: 1 },
      bootCost: { boots: 10 },
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
  const handover = results.handover ? { ...results.handover, resultsFile: results.handover.resultsFile ?? resultsFile } : undefined;
  const latency = results.latency ? { ...results.latency, resultsFile: results.latency.resultsFile ?? resultsFile } : undefined;
  const latencyNotesPath = join(repoRoot, 'bench', 'notes-latency.md');
  const latencyNotes = existsSync(latencyNotesPath) ? readFileSync(latencyNotesPath, 'utf8') : '';
  const withFiles = { ...results, handover, latency, latencyNotes };
  writeFileSync(join(repoRoot, 'docs', 'BENCHMARKS.md'), markdown({ ...withFiles, targets: verdicts(withFiles) }, resultsFile, chart, notes));
  log('wrote docs/BENCHMARKS.md');
}

function readResults(file: string): Results {
  return JSON.parse(readFileSync(join(repoRoot, file), 'utf8')) as Results;
}

/**
 * Sections 1–4 from `base`, the hand-over section (5) and the latency section (6) from
 * `later` when it has them (a run of only those scenarios, `--only paced,handover10k` or
 * `--only latency`), each keeping its own file, date and machine.
 */
function withLater(base: Results, later: Results, laterFile: string): Results {
  return {
    ...base,
    ...(later.handover ? { handover: { ...later.handover, resultsFile: laterFile } } : {}),
    ...(later.latency ? { latency: { ...later.latency, resultsFile: laterFile } } : {}),
  };
}

/** The newest run in bench/results whose name matches (none: undefined). */
function newestRun(pattern: RegExp): string | undefined {
  const files = readdirSync(join(repoRoot, 'bench', 'results')).filter((f) => pattern.test(f)).sort();
  const last = files.at(-1);
  return last ? `bench/results/${last}` : undefined;
}

/** The newest full run in bench/results (no -quick, no -only suffix). */
const newestFullRun = (): string | undefined => newestRun(/^\d{4}-\d{2}-\d{2}\.json$/);
/** The newest run of both hand-over scenarios alone (section 5: 5a and 5b), not a diagnostic variant. */
const newestHandoverRun = (): string | undefined => newestRun(/^\d{4}-\d{2}-\d{2}-only-paced-handover10k\.json$/);

async function main(): Promise<number> {
  const bad = badArgs();
  if (bad !== undefined) {
    process.stderr.write((bad ? bad + '\n' : '') + USAGE + '\n');
    return bad ? 2 : 0;
  }
  const fromArg = argv[argv.indexOf('--from') + 1];
  if (argv.includes('--from') && fromArg) {
    // Re-render the docs from saved runs (after editing bench/notes.md or the report):
    // the first file for sections 1-4, a later hand-over-only run for section 5.
    const [first, ...later] = fromArg.split(',');
    let saved = readResults(first ?? '');
    for (const f of later) saved = withLater(saved, readResults(f), f);
    writeDocs(saved, first ?? '');
    return 0;
  }
  const wrk = await wrkVersion();
  if (!wrk) {
    log('bench: wrk is not installed; on Debian/Ubuntu: apt-get update && apt-get install -y wrk');
    return 2;
  }
  const date = new Date().toISOString().slice(0, 10);
  const command = `npm run bench${quick || only ? ' --' : ''}${quick ? ' --quick' : ''}${only ? ` --only ${[...only].join(',')}` : ''}`;
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
  if (wants('paced') || wants('handover10k')) {
    log('5. connection hand-over');
    const paced: PacedRow[] = [];
    const idle: IdleRow[] = [];
    if (wants('paced')) for (const kind of plan.pacedTargets) paced.push(await pacedUsers(kind, { ...plan.paced, log }));
    if (wants('handover10k')) for (const v of plan.idleVariants) idle.push(await idleHandover(plan.idle, v, log));
    partial.handover = { date, command, machine: partial.machine, paced, idle };
  }
  if (wants('latency') || (only !== undefined && only.has('boot'))) {
    log('6. reload latency');
    const nextDir = argValue('--next') ?? findNextApp();
    const rounds = Number(argValue('--rounds') ?? plan.latency.rounds);
    const targets = argValue('--targets')?.split(',');
    const shapes = argValue('--shapes')?.split(',') as Shape[] | undefined;
    const progressFile = join(repoRoot, 'bench', 'results', `.${date}-latency-progress.json`);
    const progress = (r: unknown): void => writeFileSync(progressFile, JSON.stringify(r));
    const rows = wants('latency') ? await reloadLatency({ ...plan.latency, rounds, nextDir, ...(targets ? { only: targets } : {}), ...(shapes ? { shapes } : {}), ...(argValue('--other-cli') ? { otherCli: argValue('--other-cli') } : {}), log, progress }) : [];
    // `--only boot` (or latency,boot): each app booted alone, with and without the compile cache, on each --nodes binary.
    const nodes = (argValue('--nodes') ?? process.execPath).split(',');
    const boots = only?.has('boot') ? await bootCost(nodes, Number(argValue('--boots') ?? plan.bootCost.boots), nextDir, log) : undefined;
    const extra = ['--targets', '--rounds', '--shapes', '--other-cli', '--nodes', '--boots'].flatMap((f) => (argValue(f) ? [`${f} ${argValue(f)}`] : []));
    partial.latency = { date, command: [command, ...extra].join(' '),
      machine: { ...partial.machine, haproxy: await haproxyVersion() }, options: { ...plan.latency, rounds }, nextDir, rows, ...(boots ? { boot: boots } : {}) };
  }
  partial.machine.loadavg.end = loadavg()[0] ?? 0;
  const results: Results = { ...partial, targets: verdicts(partial) };

  const resultsDir = join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  // A partial run (--only) never overwrites the day's full results.
  // `--label`: a diagnostic run beside the day's published one, which it neither overwrites nor renders over.
  const label = argValue('--label');
  const suffix = (quick ? '-quick' : '') + (only ? `-only-${[...only].join('-')}` : '') + (label ? `-${label}` : '');
  const resultsFile = `bench/results/${date}${suffix}.json`;
  writeFileSync(join(repoRoot, resultsFile), JSON.stringify(results, null, 1) + '\n');
  log(`wrote ${resultsFile}`);
  const partialOnly = only !== undefined && [...only].every((x) => x === 'paced' || x === 'handover10k' || x === 'latency' || x === 'boot');
  // `--base full.json[,later.json…]`: what the other sections come from (default: the newest
  // full run, and for a latency run the newest hand-over run too).
  const bases = (argValue('--base') ?? [newestFullRun(), (only?.has('latency') || only?.has('boot')) && !only.has('paced') ? newestHandoverRun() : undefined].filter(Boolean).join(',')).split(',').filter(Boolean);
  if (label !== undefined && !argv.includes('--docs')) log('docs left alone (--label)');
  else if (!quick && partialOnly && bases.length) {
    // A run of some scenarios alone renders into the newest full run's docs.
    let merged = readResults(bases[0]!);
    for (const f of bases.slice(1)) merged = withLater(merged, readResults(f), f);
    writeDocs(withLater(merged, results, resultsFile), bases[0]!);
  } else if ((!quick && !only) || argv.includes('--docs')) writeDocs(results, resultsFile);
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
