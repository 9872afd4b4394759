/**
 * `node build/bench/canary.js [--runs 5] [--duration 10s]`: how many bad responses reach
 * clients before a canary rolls a bad release back, and how long the decision takes.
 *
 * Per run: a hitless master (2 workers, canary.workers 1, minRequests 100) on 127.0.0.1
 * running the canary test fixture (build/test/fixtures/canary/app.js, which behaves as
 * `behave.json` in its folder says), wrk sending `Connection: close` requests (so the canary
 * gets its share of new connections) from 1 s before `hitless reload --canary` until
 * `duration` + 5 s, then the master stops. Variants: every 10th response a 500, +200 ms per
 * response, and a good release. Prints a markdown table and writes
 * bench/results/canary-<date>.json.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../src/config/duration.js';
import type { ReloadOutcome } from '../src/core/types.js';
import { freePort, killAllGroups, run, sleep, spawnGroup, waitFor, waitForPort } from './proc.js';
import { cliPath } from './targets/hitless.js';
import { repoRoot } from './targets/target.js';
import { parseWrk } from './wrk.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => (argv.includes(name) ? (argv[argv.indexOf(name) + 1] ?? fallback) : fallback);
const runs = Number(flag('--runs', '5'));
const durationMs = parseDuration(flag('--duration', '10s'));
const fixture = join(repoRoot, 'build', 'test', 'fixtures', 'canary', 'app.js');

const VARIANTS = [
  { name: '10% 500s', behave: { errorEvery: 10 } },
  { name: '+200 ms', behave: { delayMs: 200 } },
  { name: 'good', behave: {} },
] as const;

interface RunResult {
  variant: string;
  code: string;
  /** Canary ready → decision (the outcome's canary.elapsedMs). */
  decisionMs: number;
  /** `hitless reload --canary` asked → outcome (canary drained out, or the rest live). */
  reloadMs: number;
  canaryResponses: number;
  canary5xx: number;
  canaryP99: number | undefined;
  servingP99: number | undefined;
  /** What wrk saw over the whole run. */
  requests: number;
  badToClients: number;
  connectionErrors: number;
}

async function once(variant: (typeof VARIANTS)[number]): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-bench-canary-'));
  const port = await freePort();
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({
    command: ['node', fixture], listen: [`127.0.0.1:${port}`], workers: 2, drainTimeout: '10s', runDir: join(dir, 'run'),
    canary: { workers: 1, duration: durationMs, minRequests: 100, maxErrorRate: 0.01, maxLatencyRatio: 2 },
  }));
  const master = spawnGroup('node', [cliPath, 'start', '--config', join(dir, 'hitless.json')], { cwd: dir });
  try {
    await waitForPort(port, 30_000);
    await waitFor('the first generation', () => /master ready/.test(master.output()), 30_000);
    writeFileSync(join(dir, 'behave.json'), JSON.stringify(variant.behave));
    const wrk = spawnGroup('wrk', ['-t1', '-c16', `-d${Math.ceil((durationMs + 6000) / 1000)}s`, '-H', 'Connection: close', `http://127.0.0.1:${port}/`]);
    await sleep(1000);
    const asked = performance.now();
    const r = await run('node', [cliPath, 'reload', '--canary', '--json', '--config', join(dir, 'hitless.json')], {}, durationMs + 60_000);
    const reloadMs = performance.now() - asked;
    const outcome = JSON.parse(r.stdout) as ReloadOutcome;
    await wrk.exited;
    const w = parseWrk(wrk.output());
    const c = outcome.canary;
    return {
      variant: variant.name, code: outcome.error?.code ?? 'promoted', decisionMs: c?.elapsedMs ?? Number.NaN, reloadMs,
      canaryResponses: c?.canary.requests ?? 0, canary5xx: c?.canary.errors ?? 0, canaryP99: c?.canary.p99Ms, servingP99: c?.baseline.p99Ms,
      requests: w.requests, badToClients: w.non2xx, connectionErrors: w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout,
    };
  } finally {
    master.child.kill('SIGTERM');
    await Promise.race([master.exited, sleep(20_000)]);
    master.killGroup('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const f0 = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(0));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const results: RunResult[] = [];
const load = { start: loadavg()[0] ?? 0, end: 0 };
for (let i = 0; i < runs; i++) {
  for (const v of VARIANTS) {
    const r = await once(v);
    results.push(r);
    process.stdout.write(`run ${i + 1} ${v.name}: ${r.code}, decision ${f0(r.decisionMs)} ms, ${r.badToClients} bad of ${r.requests}, ${r.connectionErrors} connection errors\n`);
  }
}
load.end = loadavg()[0] ?? 0;
killAllGroups();

const rows = VARIANTS.map((v) => {
  const rs = results.filter((r) => r.variant === v.name);
  return `| ${v.name} | ${[...new Set(rs.map((r) => r.code))].join(', ')} | ${rs.length} | ${f0(median(rs.map((r) => r.decisionMs)))} / ${f0(Math.max(...rs.map((r) => r.decisionMs)))} | ` +
    `${f0(median(rs.map((r) => r.reloadMs)))} | ${f0(median(rs.map((r) => r.canaryResponses)))} | ${f0(median(rs.map((r) => r.badToClients)))} / ${f0(Math.max(...rs.map((r) => r.badToClients)))} | ` +
    `${f0(median(rs.map((r) => r.requests)))} | ${rs.reduce((a, r) => a + r.connectionErrors, 0)} |`;
});
const table = [
  '| release | outcome | runs | decision ms (median / max) | `hitless reload` ms (median) | canary responses judged (median) | bad responses to clients (median / max) | requests per run (median) | connection errors (all runs) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
].join('\n');
process.stdout.write(`\n${table}\n\nload average ${load.start.toFixed(2)} → ${load.end.toFixed(2)}, canary.duration ${durationMs} ms, ${runs} runs per release\n`);
const date = new Date().toISOString().slice(0, 10);
mkdirSync(join(repoRoot, 'bench', 'results'), { recursive: true });
writeFileSync(join(repoRoot, 'bench', 'results', `canary-${date}.json`), JSON.stringify({ date, durationMs, runs, load, results }, null, 2) + '\n');
