/**
 * `node build/bench/upgrade.js [--users 1000] [--lead 5000] [--tail 5000]`: replacing the
 * hitless master by a new copy of hitless (another version string) under paced keep-alive
 * users, measured side by side in one run: `hitless upgrade`, against what it replaces,
 * `hitless stop` followed by `hitless start` of the new copy. Each user is its own keep-alive
 * connection that POSTs, thinks 0–1.2 s and POSTs again (bench/scenarios/paced.ts).
 * Counted by the load client (bench/loadgen.ts) and, beside it, wrk with the same think
 * time (when installed): requests, failed requests by kind, connections opened beyond one
 * per user. Prints a table; writes nothing. Everything started is killed at the end.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killAllGroups, now, run, sleep, spawnGroup, waitForPort, type Spawned } from './proc.js';
import { startLoad, tally } from './loadgen.js';
import { startWrk, wrkFailures, type WrkResult } from './wrk.js';
import { repoRoot } from './targets/target.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number): number => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback);
const USERS = arg('--users', 1000);
const LEAD_MS = arg('--lead', 5000);
const TAIL_MS = arg('--tail', 5000);
const THINK: [number, number] = [0, 1200];
const cli = join(repoRoot, 'build', 'src', 'cli', 'main.js');
const app = join(repoRoot, 'build', 'bench', 'app.js');

interface Row {
  variant: string;
  actionMs: number;
  requests: number;
  failed: number;
  kinds: string;
  reopened: number;
  wrk: WrkResult | undefined;
}

/** A copy of the built package with another version (what an install of a new hitless leaves). */
function copyOfHitless(dir: string): string {
  mkdirSync(join(dir, 'build'), { recursive: true });
  cpSync(join(repoRoot, 'build', 'src'), join(dir, 'build', 'src'), { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, version: `${pkg.version}-bench-new` }));
  return join(dir, 'build', 'src', 'cli', 'main.js');
}

function startMaster(main: string, dir: string, port: number): Spawned {
  return spawnGroup(process.execPath, [
    main, 'start', '--run-dir', join(dir, 'run'), '--listen', `127.0.0.1:${port}`, '--workers', '2', '--', process.execPath, app,
  ], { cwd: dir, env: { ...process.env, BENCH_TRACK_GENERATION: '1', BENCH_KEEPALIVE_MS: '60000' } });
}

async function measure(variant: 'upgrade' | 'stop+start', hasWrk: boolean): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-bench-upgrade-'));
  const copy = copyOfHitless(join(dir, 'new'));
  const port = await freePort();
  const old = startMaster(cli, dir, port);
  let next: Spawned | undefined;
  try {
    await waitForPort(port);
    const duration = LEAD_MS + TAIL_MS + 60_000;
    const load = startLoad({ port, connections: USERS, thinkMs: THINK, method: 'POST', body: '{"user":1}', durationMs: duration, keepAlive: true });
    const wrk = hasWrk ? startWrk({ port, connections: USERS, durationMs: duration, keepAlive: true, paced: { thinkMs: THINK, body: '{"user":1}' } }) : undefined;
    await sleep(LEAD_MS);
    const t0 = now();
    if (variant === 'upgrade') {
      const r = await run(process.execPath, [cli, 'upgrade', '--exec', copy, '--run-dir', join(dir, 'run')], {}, 120_000);
      if (r.code !== 0) throw new Error(`hitless upgrade failed:\n${r.stdout}${r.stderr}`);
    } else {
      const r = await run(process.execPath, [cli, 'stop', '--run-dir', join(dir, 'run')], {}, 120_000);
      if (r.code !== 0) throw new Error(`hitless stop failed:\n${r.stdout}${r.stderr}`);
      next = startMaster(copy, dir, port);
      await waitForPort(port);
    }
    const actionMs = now() - t0;
    await sleep(TAIL_MS);
    const records = await load.stop();
    const w = await wrk?.stop();
    const t = tally(records);
    const kinds = Object.entries(t.errors).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || '–';
    return { variant, actionMs, requests: t.requests, failed: t.failed, kinds, reopened: records.opened - USERS, wrk: w };
  } finally {
    await run(process.execPath, [cli, 'stop', '--run-dir', join(dir, 'run')], {}, 60_000).catch(() => undefined);
    old.killGroup();
    next?.killGroup();
    rmSync(dir, { recursive: true, force: true });
  }
}

const hasWrk = (await run('sh', ['-c', 'command -v wrk'])).code === 0;
const rows: Row[] = [];
try {
  for (const variant of ['upgrade', 'stop+start'] as const) {
    process.stdout.write(`measuring ${variant} under ${USERS} paced keep-alive users…\n`);
    rows.push(await measure(variant, hasWrk));
  }
} finally {
  killAllGroups();
}
process.stdout.write(`\n| replacing the master | took | load client: requests | failed (by kind) | connections re-opened | wrk: requests | wrk: failed |\n| --- | --- | --- | --- | --- | --- | --- |\n`);
for (const r of rows) {
  const wrk = r.wrk ? [String(r.wrk.requests), `${wrkFailures(r.wrk)} (connect ${r.wrk.errors.connect}, read ${r.wrk.errors.read}, write ${r.wrk.errors.write}, timeout ${r.wrk.errors.timeout})`] : ['–', '(wrk not installed)'];
  process.stdout.write(`| \`hitless ${r.variant === 'upgrade' ? 'upgrade' : 'stop` + `hitless start'}\` | ${(r.actionMs / 1000).toFixed(2)} s | ${r.requests} | ${r.failed} (${r.kinds}) | ${r.reopened} | ${wrk.join(' | ')} |\n`);
}
process.stdout.write(`\n${USERS} users, think ${THINK[0]}–${THINK[1]} ms, 2 workers, ${LEAD_MS / 1000} s before and ${TAIL_MS / 1000} s after; node ${process.version}.\n`);
