/**
 * `node build/bench/canary.js [--runs 5] [--duration 10s] [--shapes close,keepalive,…]`:
 * how many bad responses reach clients before a canary rolls a bad release back, how long
 * the decision takes, and — for clients that keep their connections (issue 18) — whether
 * the canary gets any traffic at all, and what became of the connections.
 *
 * Per run: a hitless master (3 workers, canary.workers 1, minRequests 100) on 127.0.0.1
 * running the canary test fixture (build/test/fixtures/canary/app.js, which behaves as
 * `behave.json` in its folder says), a client of one shape (bench/canary-shapes.ts:
 * `Connection: close` wrk; a fixed keep-alive set of the project's load client, with the
 * split on and off; the same through nginx with an upstream keepalive pool; light pools, nginx's
 * and Node's http.Agent's, with the lending of a starved canary on and off) from 1 s before
 * `hitless reload --canary` until `duration` + 5 s, then the master stops. Releases: every
 * 10th response a 500, +200 ms per response, and a good one. Prints a markdown table and
 * writes bench/results/canary-<date>.json. Shapes whose tool (wrk, nginx) is missing are
 * skipped, and said so.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../src/config/duration.js';
import type { ReloadOutcome } from '../src/core/types.js';
import { SHAPES, startClient, type ClientCount, type Shape } from './canary-shapes.js';
import { freePort, killAllGroups, run, sleep, spawnGroup, waitFor, waitForPort } from './proc.js';
import { cliPath } from './targets/hitless.js';
import { repoRoot } from './targets/target.js';
import { flagValue } from './args.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => flagValue(argv, name, fallback);
const runs = Number(flag('--runs', '5'));
const durationMs = parseDuration(flag('--duration', '10s'));
const fixture = join(repoRoot, 'build', 'test', 'fixtures', 'canary', 'app.js');
const has = (tool: string): boolean => spawnSync(tool, ['-v'], { stdio: 'ignore' }).error === undefined;
const wanted = flag('--shapes', SHAPES.map((s) => s.name.split(',')[0]).join(',')).split(',');
const shapes = SHAPES.filter((s) => wanted.includes(s.name.split(',')[0] ?? ''))
  .filter((s) => {
    const tool = s.client === 'wrk-close' ? 'wrk' : s.client === 'nginx' || s.client === 'nginx-light' ? 'nginx' : undefined;
    if (tool === undefined || has(tool)) return true;
    process.stdout.write(`skipping shape "${s.name}": ${tool} is not installed\n`);
    return false;
  });

const VARIANTS = [
  { name: '10% 500s', behave: { errorEvery: 10 } },
  { name: '+200 ms', behave: { delayMs: 200 } },
  { name: 'good', behave: {} },
] as const;

interface RunResult extends ClientCount {
  shape: string;
  variant: string;
  code: string;
  /** Canary ready → decision (the outcome's canary.elapsedMs). */
  decisionMs: number;
  /** `hitless reload --canary` asked → outcome (canary drained out, or the rest live). */
  reloadMs: number;
  canaryResponses: number;
  canary5xx: number;
  /** Connections moved to the canary, and (rejected) handed back / lost on either move. */
  moved: number;
  back: number;
  lost: number;
}

async function once(shape: Shape, variant: (typeof VARIANTS)[number]): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-bench-canary-'));
  const port = await freePort();
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({
    command: ['node', fixture], listen: [`127.0.0.1:${port}`], workers: 3, drainTimeout: '10s', runDir: join(dir, 'run'),
    canary: { workers: 1, duration: durationMs, minRequests: 100, maxErrorRate: 0.01, maxLatencyRatio: 2, connections: shape.connections },
  }));
  const env = { ...process.env, ...(shape.lend === false ? { HITLESS_CANARY_LEND: '0' } : {}) };
  const master = spawnGroup('node', [cliPath, 'start', '--config', join(dir, 'hitless.json')], { cwd: dir, env });
  try {
    await waitForPort(port, 30_000);
    await waitFor('the first generation', () => /master ready/.test(master.output()), 30_000);
    writeFileSync(join(dir, 'behave.json'), JSON.stringify(variant.behave));
    const client = await startClient(shape, port, durationMs + 6000);
    // Every client connection open (and nginx's pool filled) before the reload.
    await sleep(1000);
    const asked = performance.now();
    const r = await run('node', [cliPath, 'reload', '--canary', '--json', '--config', join(dir, 'hitless.json')], {}, durationMs + 60_000);
    const reloadMs = performance.now() - asked;
    const outcome = JSON.parse(r.stdout) as ReloadOutcome;
    await sleep(Math.max(0, durationMs + 5000 - reloadMs));
    const count = await client.stop();
    const c = outcome.canary;
    const split = c?.connections;
    return {
      shape: shape.name, variant: variant.name, code: outcome.error?.code ?? 'promoted', decisionMs: c?.elapsedMs ?? Number.NaN, reloadMs,
      canaryResponses: c?.canary.requests ?? 0, canary5xx: c?.canary.errors ?? 0, ...count,
      moved: split?.moved ?? 0, back: outcome.ok ? 0 : (outcome.connections?.handedOver ?? 0), lost: (split?.lost ?? 0) + (outcome.connections?.lost ?? 0),
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
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

const results: RunResult[] = [];
const load = { start: loadavg()[0] ?? 0, end: 0 };
for (let i = 0; i < runs; i++) {
  for (const shape of shapes) {
    for (const v of VARIANTS) {
      const r = await once(shape, v);
      results.push(r);
      process.stdout.write(`run ${i + 1} ${shape.name} ${v.name}: ${r.code}, decision ${f0(r.decisionMs)} ms, ${r.canaryResponses} canary responses, ` +
        `${r.bad} bad of ${r.requests}, ${r.connectionErrors} connection errors, opened ${r.opened ?? '–'} of ${r.initial}, moved ${r.moved}, back ${r.back}, lost ${r.lost}\n`);
    }
  }
}
load.end = loadavg()[0] ?? 0;
killAllGroups();

const rows = shapes.flatMap((shape) => VARIANTS.map((v) => {
  const rs = results.filter((r) => r.shape === shape.name && r.variant === v.name);
  const opened = rs.every((r) => r.opened === undefined) ? 'new per request' : `${sum(rs.map((r) => r.opened ?? 0))} / ${sum(rs.map((r) => r.initial))}`;
  return `| ${shape.name} | ${v.name} | ${[...new Set(rs.map((r) => r.code))].join(', ')} | ${rs.length} | ${f0(median(rs.map((r) => r.decisionMs)))} | ` +
    `${f0(median(rs.map((r) => r.canaryResponses)))} | ${f0(median(rs.map((r) => r.moved)))} / ${f0(median(rs.map((r) => r.back)))} / ${sum(rs.map((r) => r.lost))} | ` +
    `${f0(median(rs.map((r) => r.bad)))} / ${f0(Math.max(...rs.map((r) => r.bad)))} | ${f0(median(rs.map((r) => r.requests)))} | ` +
    `${sum(rs.map((r) => r.connectionErrors))} | ${opened} |`;
}));
const table = [
  '| clients | release | outcome | runs | decision ms (median) | canary responses judged (median) | connections moved / back / lost (median, median, all runs) | bad responses to clients (median / max) | requests per run (median) | connection errors (all runs) | connections opened / initial (all runs) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
].join('\n');
process.stdout.write(`\n${table}\n\nload average ${load.start.toFixed(2)} → ${load.end.toFixed(2)}, canary.duration ${durationMs} ms, ${runs} runs per release and shape\n`);
const date = new Date().toISOString().slice(0, 10);
mkdirSync(join(repoRoot, 'bench', 'results'), { recursive: true });
writeFileSync(join(repoRoot, 'bench', 'results', `canary-${date}.json`), JSON.stringify({ date, durationMs, runs, load, shapes, results }, null, 2) + '\n');
