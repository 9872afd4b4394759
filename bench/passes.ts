/**
 * `node build/bench/passes.js --arm <arm> --arm <arm> … [--pairs 3] [--reloads 5] [--label <name>]`:
 * diagnostic passes that set variants of hitless side by side (issue 23), in alternating
 * order (A B C, then C B A, …) so that the machine's drift lands on every arm alike.
 *
 * An arm is `name` (hitless's defaults: no warm-up, which needs a path the app names; the
 * latency scenario's `hitless` target adds `--warmup /`, so its ratios are not these) or
 * `name=<tokens>`: tokens of the form KEY=VALUE
 * (an upper-case KEY) are environment variables of the master and its workers, the rest are
 * flags of `hitless start`. For example:
 *
 *   --arm defaults --arm 'cap4=NODE_OPTIONS=--max-semi-space-size=4' --arm 'spread10=--handover-spread 10s'
 *
 * One variable is the bench's own: BENCH_MASTER_SESSION_NICE=<n> sets the master's session
 * (autogroup) to nice n once it serves, for the whole pass (its relaying then takes only the
 * CPU the workers leave; measured without a gain: bench/notes-latency.md).
 *
 * Each pass: a fresh master with 2 workers running the benchmark app on 127.0.0.1; 1000
 * paced keep-alive users (each POSTs, thinks 0–1.2 s, POSTs again: section 5a of
 * docs/BENCHMARKS.md); 8 s of load, then `reloads` reloads 4 s apart. A reload window runs
 * from the reload request until 1 s after the old workers are gone; steady is every request
 * from 3 s in that is not within 0.5 s before or 1.5 s after a window. Per pass it prints the
 * window's and steady's p99, their ratio, and the window's requests over 1.5× steady p99 and
 * over 5, 10 and 20 ms: counts that a longer window does not dilute, unlike its p99 (a
 * reload twice as long holds twice the ordinary requests, so the same slow ones are half the
 * share). Then the means per arm, and bench/results/passes-<date>[-<label>].json. The
 * master and the workers run the `node` first on PATH. Takes ~75 s per pass with the defaults.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { flagValue, labelProblem } from './args.js';
import { Kind, startLoad, type LoadResult } from './loadgen.js';
import { freePort, killAllGroups, now, sleep } from './proc.js';
import { inWindows, percentile, type Window } from './stats.js';
import { HitlessTarget } from './targets/hitless.js';
import { reloadAndWait, repoRoot } from './targets/target.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => flagValue(argv, name, fallback);
const pairs = Number(flag('--pairs', '3'));
const reloads = Number(flag('--reloads', '5'));
for (const [name, n] of [['--pairs', pairs], ['--reloads', reloads]] as const) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a whole number of at least 1, not ${JSON.stringify(flag(name, ''))}`);
}
const label = argv.includes('--label') ? flag('--label', '') : undefined;
const badLabel = label === undefined ? undefined : labelProblem(label);
if (badLabel !== undefined) throw new Error(badLabel);

interface Arm {
  name: string;
  env: Record<string, string>;
  args: string[];
}

/**
 * @example
 * parseArm('cap4=NODE_OPTIONS=--max-semi-space-size=4 --warmup /');
 * // { name: 'cap4', env: { NODE_OPTIONS: '--max-semi-space-size=4' }, args: ['--warmup', '/'] }
 */
function parseArm(spec: string): Arm {
  const at = spec.indexOf('=');
  const name = at < 0 ? spec : spec.slice(0, at);
  const env: Record<string, string> = {};
  const args: string[] = [];
  for (const token of at < 0 ? [] : spec.slice(at + 1).split(' ').filter(Boolean)) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(token);
    if (m) env[m[1]!] = m[2]!;
    else args.push(token);
  }
  const badName = labelProblem(name, 'an --arm name');
  if (badName !== undefined) throw new Error(badName);
  return { name, env, args };
}

const arms = argv.flatMap((a, i) => (a === '--arm' && argv[i + 1] !== undefined ? [parseArm(argv[i + 1]!)] : []));
if (arms.length === 0) throw new Error('give at least one --arm (e.g. --arm defaults --arm "spread10=--handover-spread 10s")');
if (new Set(arms.map((a) => a.name)).size !== arms.length) throw new Error('two --arm share a name');

const USERS = 1000;
const LEAD_MS = 8000;
const GAP_MS = 4000;
const STEADY_AFTER_MS = 3000;
const WINDOW_TAIL_MS = 1000;

interface Pass {
  arm: string;
  steadyP99: number;
  windowP99: number;
  ratio: number;
  windowRequests: number;
  overSteady: number;
  over5: number;
  over10: number;
  over20: number;
  failed: number;
  opened: number;
  reloadMs: number[];
  loadavg: [number, number];
}

async function pass(arm: Arm): Promise<Pass> {
  const port = await freePort();
  const target = new HitlessTarget({ port, handlerMs: 0, workers: 2 }, 'cli', { env: arm.env, args: arm.args });
  const load0 = loadavg()[0] ?? 0;
  await target.start();
  // BENCH_MASTER_SESSION_NICE (see the top): the master leads its session (spawnGroup starts it detached).
  const masterNice = arm.env.BENCH_MASTER_SESSION_NICE;
  const masterPid = target.supervisorPid();
  if (masterNice !== undefined && masterPid !== undefined) writeFileSync(`/proc/${masterPid}/autogroup`, masterNice);
  const origin = now();
  const load = startLoad({
    port, connections: USERS, thinkMs: [0, 1200], keepAlive: true, durationMs: 300_000,
    method: 'POST', body: '{"user":1}', headers: { 'Content-Type': 'application/json' },
  });
  let records: LoadResult;
  const windows: Window[] = [];
  try {
    await sleep(LEAD_MS);
    for (let i = 0; i < reloads; i++) {
      const r = await reloadAndWait(target);
      windows.push({ from: r.requestedAt, to: r.completeAt + WINDOW_TAIL_MS });
      await sleep(GAP_MS);
    }
  } finally {
    records = await load.stop();
    await target.stop();
  }
  const near = windows.map((w) => ({ from: w.from - 500, to: w.to + 1500 }));
  const steady: number[] = [];
  const window: number[] = [];
  let failed = 0;
  for (let i = 0; i < records.count; i++) {
    if (records.kind[i] !== Kind.ok) {
      failed++;
      continue;
    }
    const start = records.start[i]!;
    if (start < origin + STEADY_AFTER_MS) continue;
    if (inWindows(start, windows)) window.push(records.latency[i]!);
    else if (!inWindows(start, near)) steady.push(records.latency[i]!);
  }
  const steadyP99 = percentile(steady, 99);
  const windowP99 = percentile(window, 99);
  const over = (ms: number): number => window.filter((l) => l > ms).length;
  return {
    arm: arm.name, steadyP99, windowP99, ratio: windowP99 / steadyP99, windowRequests: window.length,
    overSteady: over(1.5 * steadyP99), over5: over(5), over10: over(10), over20: over(20),
    failed, opened: records.opened, reloadMs: windows.map((w) => Math.round(w.to - WINDOW_TAIL_MS - w.from)),
    loadavg: [load0, loadavg()[0] ?? 0],
  };
}

const f2 = (n: number): string => n.toFixed(2);
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

const passes: Pass[] = [];
try {
  for (let p = 0; p < pairs; p++) {
    for (const arm of p % 2 === 0 ? arms : [...arms].reverse()) {
      const r = await pass(arm);
      passes.push(r);
      console.log(`${r.arm}: window p99 ${f2(r.windowP99)} ms / steady ${f2(r.steadyP99)} ms = ${f2(r.ratio)}×; over 1.5× steady ${r.overSteady}, over 5/10/20 ms ${r.over5}/${r.over10}/${r.over20} of ${r.windowRequests}; ${r.failed} failed, ${r.opened} opened; load ${f2(r.loadavg[0])}–${f2(r.loadavg[1])}`);
    }
  }
} finally {
  killAllGroups();
}

console.log('\n| arm (means of its passes) | passes | window p99 | steady p99 | ratio | window requests | over 1.5× steady | over 5 / 10 / 20 ms | failed | reload |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const arm of arms) {
  const rs = passes.filter((r) => r.arm === arm.name);
  const m = (k: keyof Pass): number => mean(rs.map((r) => r[k] as number));
  console.log(`| ${arm.name} | ${rs.length} | ${f2(m('windowP99'))} ms | ${f2(m('steadyP99'))} ms | ${f2(m('ratio'))} | ${m('windowRequests').toFixed(0)} | ${m('overSteady').toFixed(0)} | ${m('over5').toFixed(0)} / ${m('over10').toFixed(0)} / ${m('over20').toFixed(0)} | ${rs.reduce((s, r) => s + r.failed, 0)} | ${(mean(rs.flatMap((r) => r.reloadMs)) / 1000).toFixed(1)} s |`);
}
const dir = join(repoRoot, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `passes-${new Date().toISOString().slice(0, 10)}${label ? `-${label}` : ''}.json`);
writeFileSync(file, JSON.stringify({ node: process.version, users: USERS, reloads, pairs, arms, passes }, null, 2) + '\n');
console.log(`\nwrote ${file}`);
process.exit(0);
