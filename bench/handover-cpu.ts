/**
 * `node build/bench/handover-cpu.js [--connections 1000] [--reloads 3] [--spreads 5s,0] [--busy] [--label <name>]`:
 * what moving connections costs in CPU (issue 23). Per variant: a hitless master (2 workers)
 * on 127.0.0.1 running the benchmark app with a 10 min keep-alive timeout; `connections` idle
 * keep-alive connections (one request each, then nothing, so every CPU millisecond of a
 * reload is the reload's own); `reloads` reloads, 2 s apart. For each reload, the CPU time
 * (user + system, from /proc) that each process spent from the reload request until the old
 * generation is gone: the master, the old workers (sampled every 20 ms until they exit), the
 * new workers less their boot (their CPU at READY, from the master's log), and the whole
 * machine (/proc/stat, which also holds `hitless reload` itself, the kernel and anyone
 * else's work), per connection moved.
 *
 * Variants: one per `--spreads` value (`--handover-spread`: 5 s paced is the default, 0 full
 * speed); with `--busy`, each again while two busy loops at nice 19 keep both cores from
 * going idle (a CPU that idles between two messages costs more to wake on a virtual machine).
 * Prints a markdown table and writes bench/results/handover-cpu-<date>[-<label>].json. The
 * master and the workers run the `node` first on PATH (the Node version measured). The machine
 * is shared: the load average is noted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../src/config/duration.js';
import { IdlePool } from './idle.js';
import { childrenOf, freePort, isAlive, killAllGroups, now, sleep, waitFor } from './proc.js';
import { HitlessTarget, cpuMs } from './targets/hitless.js';
import { repoRoot } from './targets/target.js';
import { median } from './stats.js';
import { flagValue, labelProblem } from './args.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => flagValue(argv, name, fallback);
const connections = Number(flag('--connections', '1000'));
const reloads = Number(flag('--reloads', '3'));
const spreads = flag('--spreads', '5s,0').split(',').map((s) => parseDuration(s));
const busy = argv.includes('--busy');
const label = argv.includes('--label') ? flag('--label', '') : undefined;
const badLabel = label === undefined ? undefined : labelProblem(label);
if (badLabel !== undefined) throw new Error(badLabel);

/** CPU ms of one reload, by process role; `machine` is every CPU's busy time (/proc/stat). */
interface ReloadCpu {
  wallMs: number;
  handedOver: number;
  master: number;
  old: number;
  /** The new workers after READY (their boot CPU is `boot`). */
  new: number;
  boot: number;
  machine: number;
}

interface VariantResult {
  name: string;
  spreadMs: number;
  busy: boolean;
  reloads: ReloadCpu[];
  /** Medians over the reloads, per connection moved, µs. */
  perConnectionUs: { master: number; old: number; new: number; machine: number };
  loadavg: { start: number; end: number };
}

/** Busy time of all CPUs so far, ms (/proc/stat's first line: user nice system irq softirq steal; USER_HZ 100). */
function machineBusyMs(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) * 10;
}

/** Two busy loops at nice 19: the cores never idle, and yield to everything else. */
function burners(): ChildProcess[] {
  return [0, 1].map(() => spawn('nice', ['-n', '19', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

async function measureReload(target: HitlessTarget, master: number): Promise<ReloadCpu> {
  const old = childrenOf(master);
  const start = new Map(old.map((p) => [p, cpuMs(p) ?? 0]));
  const last = new Map(start);
  // An old worker's CPU is read until it exits (its last reading is all it used).
  const sampler = setInterval(() => {
    for (const p of old) {
      const c = cpuMs(p);
      if (c !== undefined) last.set(p, c);
    }
  }, 20);
  const from = target.records.length;
  const master0 = cpuMs(master) ?? 0;
  const machine0 = machineBusyMs();
  const t0 = now();
  await target.reload();
  await waitFor('the old generation gone', () => old.every((p) => !isAlive(p)), 60_000, 10);
  clearInterval(sampler);
  const wallMs = now() - t0;
  const fresh = childrenOf(master).filter((p) => !start.has(p));
  const mine = target.records.slice(from);
  const ready = mine.filter((r) => r.event === 'worker-ready' && typeof r.cpuMs === 'number' && fresh.includes(r.pid as number));
  const boot = ready.reduce((s, r) => s + (r.cpuMs as number), 0);
  const drained = mine.find((r) => r.event === 'reload-drained');
  const handedOver = typeof drained?.handedOver === 'number' ? drained.handedOver : 0;
  return {
    wallMs,
    handedOver,
    master: (cpuMs(master) ?? 0) - master0,
    old: old.reduce((s, p) => s + (last.get(p) ?? 0) - (start.get(p) ?? 0), 0),
    new: fresh.reduce((s, p) => s + (cpuMs(p) ?? 0), 0) - boot,
    boot,
    machine: machineBusyMs() - machine0,
  };
}

async function variant(spreadMs: number, withBurners: boolean): Promise<VariantResult> {
  const name = `hand-over ${spreadMs === 0 ? 'at full speed (--handover-spread 0)' : `paced over ${spreadMs / 1000} s`}${withBurners ? ', both cores kept busy at nice 19' : ''}`;
  const load0 = loadavg()[0] ?? 0;
  const port = await freePort();
  const target = new HitlessTarget({ port, handlerMs: 0, workers: 2 }, 'cli', {
    name, args: ['--handover-spread', `${spreadMs}ms`], env: { BENCH_KEEPALIVE_MS: '600000' },
  });
  const hot = withBurners ? burners() : [];
  let pool: IdlePool | undefined;
  try {
    await target.start();
    pool = await IdlePool.open(port, connections);
    await sleep(2000);
    const master = target.supervisorPid();
    if (master === undefined) throw new Error('the hitless master is gone');
    const rows: ReloadCpu[] = [];
    for (let i = 0; i < reloads; i++) {
      rows.push(await measureReload(target, master));
      await sleep(2000);
    }
    const per = (k: 'master' | 'old' | 'new' | 'machine'): number => Math.round(median(rows.map((r) => (r[k] * 1000) / Math.max(1, r.handedOver))));
    return { name, spreadMs, busy: withBurners, reloads: rows, perConnectionUs: { master: per('master'), old: per('old'), new: per('new'), machine: per('machine') }, loadavg: { start: load0, end: loadavg()[0] ?? 0 } };
  } finally {
    pool?.destroy();
    for (const b of hot) b.kill('SIGKILL');
    await target.stop();
  }
}

try {
  const results: VariantResult[] = [];
  for (const withBurners of busy ? [false, true] : [false]) {
    for (const s of spreads) {
      const r = await variant(s, withBurners);
      results.push(r);
      process.stdout.write(`${r.name}: per connection moved ${JSON.stringify(r.perConnectionUs)} µs; reloads ${JSON.stringify(r.reloads)}\n`);
    }
  }
  const lines = [
    `| ${connections} idle connections, ${reloads} reloads each (medians) | master | old workers | new workers (after READY) | all three | whole machine | reload (old generation gone) |`,
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...results.map((r) => {
      const p = r.perConnectionUs;
      return `| ${r.name} | ${p.master} µs | ${p.old} µs | ${p.new} µs | ${p.master + p.old + p.new} µs | ${r.busy ? '(holds the busy loops)' : `${p.machine} µs`} | ${(median(r.reloads.map((x) => x.wallMs)) / 1000).toFixed(1)} s |`;
    }),
  ];
  process.stdout.write(`\n${lines.join('\n')}\n\nload average ${results.map((r) => `${r.loadavg.start.toFixed(2)}→${r.loadavg.end.toFixed(2)}`).join(', ')}\n`);
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `handover-cpu-${new Date().toISOString().slice(0, 10)}${label ? `-${label}` : ''}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: spawnSync('node', ['--version'], { encoding: 'utf8' }).stdout.trim(), command: `node build/bench/handover-cpu.js ${argv.join(' ')}`.trim(), connections, results }, null, 2) + '\n');
  process.stdout.write(`wrote ${file}\n`);
} finally {
  killAllGroups();
}
