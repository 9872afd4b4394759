/**
 * Scenario 6 (issue 23): what a reload costs clients in latency. Every target gets two
 * passes on a fresh instance, each with 9 reloads: 1000 paced keep-alive users (each its own
 * connection, POSTing and thinking 0–1.2 s: most connections idle most of the time), and a
 * saturating load (keep-alive connections without think time: the CPU is never idle). For
 * each pass: p99 of the requests inside reload windows ÷ p99 of the steady requests (the
 * same client, the same run), failures, re-opened connections, and the machine's 1-minute
 * load average at the start and end of the pass (other engineers share these 2 cores).
 *
 * Targets: hitless with its boot levers on (boot priority, boot concurrency, compile cache,
 * warm-up) and with each one off, and with none; HAProxy `-W` reloaded by SIGUSR2 in front
 * of plain node workers, plain and with `idle-close-on-response`; PM2 cluster mode (`pm2 reload`); and a
 * real framework app, Next.js `next start`, under hitless with and without each lever (boot
 * time and boot CPU from the master's events). Passes run target after target in a rotating
 * order per round, so slow drift of the machine's load spreads over all of them.
 */
import { dirname, join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { freePort } from '../proc.js';
import { startLoad } from '../loadgen.js';
import { inWindows, median, percentile, summarise, type RecordSummary } from '../stats.js';
import { cmdline } from '../proc.js';
import { HaproxyTarget } from '../targets/haproxy.js';
import { HitlessTarget, type HitlessExtra } from '../targets/hitless.js';
import { Pm2Target } from '../targets/pm2.js';
import { appPath, type Target } from '../targets/target.js';
import { runPass, type PassSchedule } from './paced.js';
import type { LoadResult } from '../loadgen.js';

export type Shape = 'paced' | 'saturating';

export interface LatencyOptions extends PassSchedule {
  users: number;
  thinkMs: [number, number];
  /** Keep-alive connections of the saturating load (no think time). */
  saturating: number;
  /** The same for the framework app (a Next.js worker serves far fewer requests per second). */
  nextUsers: number;
  nextSaturating: number;
  steadyAfterMs: number;
  workers: number;
  rounds: number;
  /** The built Next.js app (test/frameworks' cache) or undefined: its targets are skipped. */
  nextDir: string | undefined;
  /** Which targets (names of LATENCY_TARGETS); all by default. */
  only?: string[];
  /** Which load shapes each target runs (`--shapes`); both by default. */
  shapes?: Shape[];
  /**
   * Another build's CLI (`--other-cli`, build/src/cli/main.js of a copy of the repository):
   * a target key with the suffix `@other` runs that target with it (and with that build's
   * bench/app.js, so its in-app library too), in the same rotation,
   * so two builds are compared side by side in one run.
   */
  otherCli?: string;
  /** The CLI this pass's master runs (set for an `@other` target). */
  cli?: string;
  log: (line: string) => void;
  /** Called with the rows so far after each target (a long run keeps what it measured if it breaks). */
  progress?: (rows: LatencyRow[]) => void;
}

export interface BootFigures {
  /** New workers of the reloads: spawn → READY (the master's worker-ready `ms`). */
  readyMs: { median: number; max: number };
  /** Their CPU time (user + system) at READY, ms. */
  cpuMs: { median: number; max: number };
  samples: number;
}

/** Requests and p99 in each part of the reload windows (hitless, from the master's records). */
export interface PhaseFigures {
  /** reload-start → reload-ready: the new workers boot (and are warmed up). */
  boot: { requests: number; p99: number };
  /** reload-draining → reload-drained: the old workers hand their connections over. */
  handover: { requests: number; p99: number };
  /** The rest of the window: the switch, and the tail after the old workers are gone. */
  rest: { requests: number; p99: number };
  /** Hand-over requests the old generation served, and the new one (from the `x-generation` answer). */
  handoverOld?: { requests: number; p99: number };
  handoverNew?: { requests: number; p99: number };
  /** The first request of each connection on its new generation (the one after it moved), anywhere in the windows. */
  moved?: { requests: number; p99: number };
  /**
   * The window's requests slower than 1.5× the steady p99 (`limitMs`), by part: the goal
   * (≤ 1.5×) holds when at most 1% of the window's requests (`allowed`) are.
   */
  over?: { limitMs: number; allowed: number; boot: number; handoverOld: number; handoverNew: number; rest: number };
}

export interface LatencyPass {
  shape: Shape;
  connections: number;
  reloads: number;
  reloadErrors: string[];
  reloadMs: { median: number; max: number };
  load: { all: RecordSummary; steady: RecordSummary; reload: RecordSummary };
  /** p99 in reload windows ÷ steady p99. */
  ratio: number;
  /**
   * Each reload against the steady load right before it: p99 of window k ÷ p99 of the steady
   * gap that ended when window k began (needs `gapMs`); median, lowest and highest over the
   * reloads. Paired in time, so a burst of someone else's work moves one pair, not the ratio.
   */
  paired?: { median: number; min: number; max: number };
  /** p99.9 in reload windows, ms. */
  reloadP999: number;
  opened: number;
  reopenedPerReload: number;
  handover?: { handedOver: number; returned: number; lost: number; drained: number };
  /** hitless: how long handed-over connections spent in the master, ms (median of the reloads' medians, highest p99). */
  transitMs?: { median: number; p99: number };
  boot?: BootFigures;
  /** hitless: the reload windows cut at the master's events, to see where the p99 is made. */
  phases?: PhaseFigures;
  loadavg: { start: number; end: number };
  durationMs: number;
}

export interface LatencyRow {
  target: string;
  key: string;
  group: 'app' | 'next';
  round: number;
  passes: LatencyPass[];
}

interface TargetDef {
  key: string;
  group: 'app' | 'next';
  make: (port: number, o: LatencyOptions) => Target;
}

const BODY = '{"user":1}';
// Every lever on: boot priority and concurrency (the defaults), compile cache (the default), warm-up of / once,
// hand-over window 1 and spread (the defaults). The ready timeout leaves room for a warm-up
// at the boot priority on a saturated machine.
const ALL_LEVERS = ['--warmup', '/', '--ready-timeout', '30s'];
const NEXT_WARMUP = ['--warmup', '/', '--warmup', '/gen', '--ready-timeout', '30s'];
const ENV = { BENCH_TRACK_GENERATION: '1' };
/** The hand-over as it was before issue 23: 2 per new worker in transit (4), at full speed. */
const OLD_HANDOVER = { ...ENV, HITLESS_HANDOVER_WINDOW: '4', HITLESS_HANDOVER_SPREAD: '0' };

function hitless(port: number, o: LatencyOptions, name: string, args: string[], extra: HitlessExtra = {}): HitlessTarget {
  // The other build's master, and its benchmark app (with its in-app library) unless the target runs another command.
  const otherApp = (cli: string): string[] => ['node', join(dirname(cli), '..', '..', 'bench', 'app.js')];
  const other = o.cli === undefined ? {} : { cli: o.cli, name: `${name} [other build: ${o.cli}]`, ...(extra.command ? {} : { command: otherApp(o.cli) }) };
  return new HitlessTarget({ port, handlerMs: 0, workers: o.workers }, 'sighup', { name, args, env: { BENCH_TRACK_GENERATION: '1' }, ...extra, ...other });
}

/** The suffix of a target key that runs it with `--other-cli`. */
const OTHER = '@other';

/** The target `key` names: one of LATENCY_TARGETS, or one with the suffix `@other` (with `otherCli`). */
function targetDef(key: string, o: LatencyOptions): TargetDef | undefined {
  const base = LATENCY_TARGETS.find((d) => d.key === (key.endsWith(OTHER) ? key.slice(0, -OTHER.length) : key));
  if (base === undefined || !key.endsWith(OTHER)) return base;
  const cli = o.otherCli;
  if (cli === undefined) throw new Error(`latency target ${key} needs --other-cli <another build's build/src/cli/main.js>`);
  return { ...base, key, make: (p, opts) => base.make(p, { ...opts, cli }) };
}

/**
 * A V8 flag of the worker's own `node` command, not hitless's: the new workers' old space
 * starts at 64 MB, so their first full GC (a mark-compact as the moved connections fill the
 * heap, ~3 s into a reload) comes after the reload, as it does for the warm workers.
 */
const HEAP_FLAG = '--initial-old-space-size=64';

/**
 * A V8 flag of the worker's own `node` command too: a young generation of at most 2 × 4 MB
 * (Node 24 lets it grow to 2 × 32 MB). A new worker's moved connections survive its
 * scavenges; with a young generation grown large each scavenge copies megabytes of them
 * (10–24 ms stalls ~3.7 s into a reload, in both new workers at once); capped, they are
 * promoted in small steps.
 */
const SEMI_FLAG = '--max-semi-space-size=4';

/**
 * The worker's own `node` flags tried against the new generation's tier-up (Maglev compiling
 * in both new workers at once, ~2 s after the switch): no Maglev at all, or every V8 helper
 * thread at nice 19 (bench/v8-nice.ts, loaded with --import), so compile and GC helpers
 * yield to the worker's own main thread.
 */
const NO_MAGLEV = ['--no-maglev'];
const V8_NICE = ['--import', fileURLToPath(new URL('../v8-nice.js', import.meta.url))];

function next(port: number, o: LatencyOptions, name: string, args: string[], env: Record<string, string> = ENV, nodeFlags: string[] = []): HitlessTarget {
  if (!o.nextDir) throw new Error('the Next.js app is not built');
  return hitless(port, o, name, args, {
    command: ['node', ...nodeFlags, 'node_modules/next/dist/bin/next', 'start', '-p', String(port)],
    cwd: o.nextDir,
    env: { ...env, NEXT_TELEMETRY_DISABLED: '1' },
    // Next renames its process (next-server): every child of the master but a `hitless check`.
    serves: (pid) => !cmdline(pid).includes('cli/main.js'),
  });
}

/** Every target of the scenario, in the order of the report. */
export const LATENCY_TARGETS: TargetDef[] = [
  { key: 'hitless', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, every lever (boot priority from the fork, one boot at a time, compile cache, warm-up /, hand-over window 1, paced ×48 within 5 s, new workers filled in turn)', ALL_LEVERS) },
  { key: 'hitless-rr', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, every lever, the new workers take the hand-over round robin (as before, HITLESS_HANDOVER_FILL=0)', ALL_LEVERS, { env: { ...ENV, HITLESS_HANDOVER_FILL: '0' } }) },
  { key: 'hitless-no-left', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, paced ×48 for 5 s, then full speed (the pace ignores what is left)', ALL_LEVERS, { env: { ...ENV, HITLESS_HANDOVER_LEFT: '0' } }) },
  { key: 'hitless-fork-late', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, booting workers lowered only after the fork', ALL_LEVERS, { env: { ...ENV, HITLESS_FORK_NICE: '0' } }) },
  { key: 'hitless-no-session', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, booting workers lowered by thread nice only, not their session (autogroup)', ALL_LEVERS, { env: { ...ENV, HITLESS_SESSION_NICE: '0' } }) },
  { key: 'hitless-heap', group: 'app', make: (p, o) => hitless(p, o, `hitless 2w, every lever, workers run as \`node ${HEAP_FLAG} app.js\``, ALL_LEVERS, { command: ['node', HEAP_FLAG, appPath] }) },
  { key: 'hitless-boot-all', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, every new worker boots at once (--boot-concurrency 2)', [...ALL_LEVERS, '--boot-concurrency', String(o.workers)]) },
  { key: 'hitless-no-nice', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, without boot priority (--boot-nice 0)', [...ALL_LEVERS, '--boot-nice', '0']) },
  { key: 'hitless-no-warmup', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, without warm-up', ['--ready-timeout', '30s']) },
  { key: 'hitless-rolling', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, every lever, one worker at a time (--strategy rolling)', [...ALL_LEVERS, '--strategy', 'rolling']) },
  { key: 'hitless-warm1000', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, warm-up / ×1000 (--warmup-rounds 1000)', [...ALL_LEVERS, '--warmup-rounds', '1000']) },
  { key: 'hitless-warm1000-heap', group: 'app', make: (p, o) => hitless(p, o, `hitless 2w, warm-up / ×1000, workers run as \`node ${HEAP_FLAG} app.js\``, [...ALL_LEVERS, '--warmup-rounds', '1000'], { command: ['node', HEAP_FLAG, appPath] }) },
  { key: 'hitless-semi4', group: 'app', make: (p, o) => hitless(p, o, `hitless 2w, every lever, workers run as \`node ${SEMI_FLAG} app.js\``, ALL_LEVERS, { command: ['node', SEMI_FLAG, appPath] }) },
  { key: 'hitless-warm5000-semi4', group: 'app', make: (p, o) => hitless(p, o, `hitless 2w, warm-up / ×5000, workers run as \`node ${SEMI_FLAG} app.js\``, [...ALL_LEVERS, '--warmup-rounds', '5000'], { command: ['node', SEMI_FLAG, appPath] }) },
  { key: 'hitless-warm5000', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, warm-up / ×5000 (--warmup-rounds 5000)', [...ALL_LEVERS, '--warmup-rounds', '5000']) },
  { key: 'hitless-no-maglev', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, every lever, workers run as `node --no-maglev app.js`', ALL_LEVERS, { command: ['node', ...NO_MAGLEV, appPath] }) },
  { key: 'hitless-v8-nice', group: 'app', make: (p, o) => hitless(p, o, "hitless 2w, every lever, the workers' V8 helper threads at nice 19 (bench/v8-nice.ts)", ALL_LEVERS, { command: ['node', ...V8_NICE, appPath] }) },
  { key: 'hitless-spread2', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, hand-over paced as before (×2 for 3 s)', [...ALL_LEVERS, '--handover-spread', '3s'], { env: { ...ENV, HITLESS_HANDOVER_SPREAD: '2' } }) },
  { key: 'hitless-no-spread', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, hand-over at full speed (spread 0)', ALL_LEVERS, { env: { ...ENV, HITLESS_HANDOVER_SPREAD: '0' } }) },
  { key: 'hitless-window4', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, hand-over window 4, full speed (before issue 23)', ALL_LEVERS, { env: OLD_HANDOVER }) },
  { key: 'hitless-none', group: 'app', make: (p, o) => hitless(p, o, 'hitless 2w, no lever (as before issue 23)', ['--boot-nice', '0', '--boot-concurrency', String(o.workers), '--no-compile-cache'], { env: OLD_HANDOVER }) },
  { key: 'haproxy', group: 'app', make: (p, o) => new HaproxyTarget({ port: p, handlerMs: 0, workers: o.workers }) },
  { key: 'haproxy-icor', group: 'app', make: (p, o) => new HaproxyTarget({ port: p, handlerMs: 0, workers: o.workers }, true) },
  { key: 'pm2', group: 'app', make: (p, o) => new Pm2Target({ port: p, handlerMs: 0, workers: o.workers }) },
  { key: 'next', group: 'next', make: (p, o) => next(p, o, 'Next.js under hitless 2w, every lever (warm-up /, /gen)', NEXT_WARMUP) },
  { key: 'next-boot-all', group: 'next', make: (p, o) => next(p, o, 'Next.js, every new worker boots at once', [...NEXT_WARMUP, '--boot-concurrency', String(o.workers)]) },
  { key: 'next-no-session', group: 'next', make: (p, o) => next(p, o, 'Next.js, booting workers lowered by thread nice only, not their session (autogroup)', NEXT_WARMUP, { ...ENV, HITLESS_SESSION_NICE: '0' }) },
  { key: 'next-heap', group: 'next', make: (p, o) => next(p, o, `Next.js, every lever, workers run as \`node ${HEAP_FLAG} next start\``, NEXT_WARMUP, ENV, [HEAP_FLAG]) },
  { key: 'next-semi4', group: 'next', make: (p, o) => next(p, o, `Next.js, every lever, workers run as \`node ${SEMI_FLAG} next start\``, NEXT_WARMUP, ENV, [SEMI_FLAG]) },
  { key: 'next-no-nice', group: 'next', make: (p, o) => next(p, o, 'Next.js, without boot priority', [...NEXT_WARMUP, '--boot-nice', '0']) },
  { key: 'next-no-cache', group: 'next', make: (p, o) => next(p, o, 'Next.js, without compile cache', [...NEXT_WARMUP, '--no-compile-cache']) },
  { key: 'next-no-warmup', group: 'next', make: (p, o) => next(p, o, 'Next.js, without warm-up', ['--ready-timeout', '30s']) },
  { key: 'next-none', group: 'next', make: (p, o) => next(p, o, 'Next.js, no lever (as before issue 23)', ['--boot-nice', '0', '--boot-concurrency', String(o.workers), '--no-compile-cache'], OLD_HANDOVER) },
];

const spread = (xs: number[]): { median: number; max: number } => ({ median: median(xs), max: xs.length ? Math.max(...xs) : Number.NaN });

/** Boot figures of the workers the reloads started (generation 2 on), from the master's records. */
function bootFigures(t: HitlessTarget): BootFigures {
  const ready = t.events('worker-ready').filter((r) => Number(r.generation) >= 2);
  return {
    readyMs: spread(ready.map((r) => Number(r.ms))),
    cpuMs: spread(ready.flatMap((r) => (typeof r.cpuMs === 'number' ? [r.cpuMs] : []))),
    samples: ready.length,
  };
}

/**
 * The p99 of the requests started in each phase of the reload windows: boot (reload-start →
 * reload-ready), hand-over (reload-draining → reload-drained) and the rest of the window.
 */
function phaseFigures(t: HitlessTarget, records: LoadResult, windows: Array<{ from: number; to: number }>, steadyP99: number): PhaseFigures {
  const spans = (from: string, to: string): Array<[number, number]> => {
    const starts = t.events(from).map((r) => r.at);
    const ends = t.events(to).map((r) => r.at);
    return starts.flatMap((s) => {
      const e = ends.find((x) => x >= s);
      return e === undefined ? [] : [[s, e] as [number, number]];
    });
  };
  const boot = spans('reload-start', 'reload-ready');
  const handover = spans('reload-draining', 'reload-drained');
  const lat = { boot: [] as number[], handover: [] as number[], rest: [] as number[], old: [] as number[], fresh: [] as number[], moved: [] as number[] };
  const within = (x: number, s: Array<[number, number]>): boolean => s.some(([a, b]) => x >= a && x <= b);
  const gen = (i: number): number => Number(records.answers[(records.answer[i] ?? 0) - 1] ?? Number.NaN);
  // Each record's window (-1: none), found once; the newest generation answering in a window is the one the reload started.
  const windowOf = new Int32Array(records.count);
  const newest = windows.map(() => -Infinity);
  for (let i = 0; i < records.count; i++) {
    const at = records.start[i] ?? 0;
    const k = windows.findIndex((w) => at >= w.from && at <= w.to);
    windowOf[i] = k;
    if (k >= 0 && records.kind[i] === 0) newest[k] = Math.max(newest[k]!, gen(i));
  }
  const lastGen = new Map<number, number>();
  for (let i = 0; i < records.count; i++) {
    const at = records.start[i] ?? 0;
    if (records.kind[i] !== 0) continue;
    const g = gen(i);
    const slot = records.slot[i] ?? 0;
    const before = lastGen.get(slot);
    lastGen.set(slot, g);
    const k = windowOf[i]!;
    if (k < 0) continue;
    const ms = records.latency[i] ?? 0;
    if (before !== undefined && before !== g) lat.moved.push(ms);
    if (within(at, boot)) lat.boot.push(ms);
    else if (within(at, handover)) {
      lat.handover.push(ms);
      (g === newest[k] ? lat.fresh : lat.old).push(ms);
    } else lat.rest.push(ms);
  }
  const fig = (xs: number[]): { requests: number; p99: number } => ({ requests: xs.length, p99: percentile(xs, 99) });
  const limitMs = 1.5 * steadyP99;
  const slow = (xs: number[]): number => xs.filter((ms) => ms > limitMs).length;
  const allowed = Math.floor((lat.boot.length + lat.handover.length + lat.rest.length) / 100);
  return { boot: fig(lat.boot), handover: fig(lat.handover), rest: fig(lat.rest), handoverOld: fig(lat.old), handoverNew: fig(lat.fresh), moved: fig(lat.moved),
    over: { limitMs, allowed, boot: slow(lat.boot), handoverOld: slow(lat.old), handoverNew: slow(lat.fresh), rest: slow(lat.rest) } };
}

/**
 * p99 of each reload window ÷ p99 of the steady gap before it (from the end of the previous
 * window's settled span, or `steadyFrom`, to this window's start); undefined when any gap has
 * fewer than 100 answered requests (back-to-back reloads leave none).
 */
function pairedRatios(records: LoadResult, windows: Array<{ from: number; to: number }>, settled: Array<{ to: number }>, steadyFrom: number): LatencyPass['paired'] {
  const ratios: number[] = [];
  for (let k = 0; k < windows.length; k++) {
    const w = windows[k]!;
    const gapFrom = k === 0 ? steadyFrom : settled[k - 1]!.to;
    const gap: number[] = [];
    const win: number[] = [];
    for (let i = 0; i < records.count; i++) {
      if (records.kind[i] !== 0) continue;
      const at = records.start[i] ?? 0;
      if (at > gapFrom && at < w.from) gap.push(records.latency[i] ?? 0);
      else if (at >= w.from && at <= w.to) win.push(records.latency[i] ?? 0);
    }
    if (gap.length < 100 || win.length === 0) return undefined;
    ratios.push(percentile(win, 99) / percentile(gap, 99));
  }
  return ratios.length ? { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) } : undefined;
}

/** The reloads' transit figures (reload-drained `transitMs`), when the master reported them. */
function transit(t: HitlessTarget): { transitMs?: { median: number; p99: number } } {
  const figures = t.events('reload-drained').flatMap((r) => (r.transitMs ? [r.transitMs as { median: number; p99: number }] : []));
  return figures.length ? { transitMs: { median: median(figures.map((f) => f.median)), p99: Math.max(...figures.map((f) => f.p99)) } } : {};
}

async function onePass(def: TargetDef, shape: Shape, o: LatencyOptions): Promise<{ name: string; pass: LatencyPass }> {
  const port = await freePort();
  const target = def.make(port, o);
  const next = def.group === 'next';
  const connections = shape === 'paced' ? (next ? o.nextUsers : o.users) : (next ? o.nextSaturating : o.saturating);
  const path = next ? '/gen' : '/';
  const start = loadavg()[0] ?? 0;
  const a = await runPass(target, o, (p) => startLoad({
    port: p, connections, keepAlive: true, durationMs: 300_000, path,
    // Next.js's route handler answers GET only; the bench app takes the POSTs of section 5a.
    ...(shape === 'paced' ? { thinkMs: o.thinkMs, ...(next ? {} : { method: 'POST', body: BODY, headers: { 'Content-Type': 'application/json' } }) } : {}),
  }));
  const records: LoadResult = a.result;
  const steadyFrom = a.origin + o.steadyAfterMs;
  const settled = a.windows.map((w) => ({ from: w.from, to: w.to + (o.settleMs ?? 0) }));
  const steady = (t: number): boolean => t > steadyFrom && t < a.stopAt - 200 && !inWindows(t, settled);
  const inReload = (t: number): boolean => inWindows(t, a.windows);
  const load = { all: summarise(records), steady: summarise(records, steady), reload: summarise(records, inReload) };
  const reloadLatencies: number[] = [];
  for (let i = 0; i < records.count; i++) if (records.kind[i] === 0 && inReload(records.start[i] ?? 0)) reloadLatencies.push(records.latency[i] ?? 0);
  const paired = pairedRatios(records, a.windows, settled, steadyFrom);
  const windows = a.windows.map((w) => w.to - o.windowTailMs - w.from);
  const reloads = a.windows.length;
  const pass: LatencyPass = {
    shape, connections, reloads, reloadErrors: a.errors, reloadMs: spread(windows), load,
    ratio: load.reload.p99 / load.steady.p99,
    ...(paired ? { paired } : {}),
    reloadP999: percentile(reloadLatencies, 99.9),
    opened: records.opened,
    reopenedPerReload: reloads ? (records.opened - connections) / reloads : Number.NaN,
    ...(a.handover ? { handover: { handedOver: a.handover.handedOver, returned: a.handover.returned, lost: a.handover.lost, drained: a.handover.drained } } : {}),
    ...(target instanceof HitlessTarget ? { boot: bootFigures(target), ...transit(target), phases: phaseFigures(target, records, a.windows, load.steady.p99) } : {}),
    loadavg: { start, end: loadavg()[0] ?? 0 },
    durationMs: a.stopAt - a.origin,
  };
  return { name: a.name, pass };
}

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');

/**
 * Runs every target's passes, `rounds` times, each round in another order (rotated by one).
 *
 * @example
 * const rows = await reloadLatency({ ...plan.latency, log });
 */
export async function reloadLatency(o: LatencyOptions): Promise<LatencyRow[]> {
  const unknown = (o.only ?? []).filter((k) => targetDef(k, o) === undefined);
  if (unknown.length) throw new Error(`no latency target ${unknown.join(', ')} (there are: ${LATENCY_TARGETS.map((d) => d.key).join(', ')}, each also as <key>${OTHER} with --other-cli)`);
  // In the report's order (LATENCY_TARGETS), each `@other` right after its own.
  const rank = (d: TargetDef): number => 2 * LATENCY_TARGETS.findIndex((b) => d.key === b.key || d.key === b.key + OTHER) + (d.key.endsWith(OTHER) ? 1 : 0);
  const defs = (o.only ? o.only.map((k) => targetDef(k, o) as TargetDef).sort((a, b) => rank(a) - rank(b)) : LATENCY_TARGETS)
    .filter((d) => d.group === 'app' || o.nextDir !== undefined);
  if (o.nextDir === undefined) o.log('  (Next.js targets skipped: the app is not built; run the framework tests once, or see bench/next-app.ts)');
  const rows: LatencyRow[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    const shift = (round - 1) % defs.length;
    const order = [...defs.slice(shift), ...defs.slice(0, shift)];
    for (const def of order) {
      const passes: LatencyPass[] = [];
      let name = def.key;
      for (const shape of o.shapes ?? (['paced', 'saturating'] as Shape[])) {
        const r = await onePass(def, shape, o);
        name = r.name;
        passes.push(r.pass);
        const p = r.pass;
        o.log(
          `  [round ${round}] ${name}, ${shape} (${p.connections} connections): ${p.reloads} reloads (median ${Math.round(p.reloadMs.median)} ms); ` +
            `${p.load.all.requests} req, ${p.load.all.failed} failed, ${p.load.all.non2xx} non-2xx, re-opened ${f1(p.reopenedPerReload)}/reload; ` +
            `p99 steady ${f1(p.load.steady.p99)} / reload ${f1(p.load.reload.p99)} ms = ${p.ratio.toFixed(2)}x (p99.9 ${f1(p.reloadP999)}); ` +
            (p.paired ? `per reload ${p.paired.median.toFixed(2)}x (${p.paired.min.toFixed(2)}–${p.paired.max.toFixed(2)}); ` : '') +
            (p.boot ? `boot ${Math.round(p.boot.readyMs.median)} ms, ${Math.round(p.boot.cpuMs.median)} ms CPU; ` : '') +
            (p.transitMs ? `in transit ${f1(p.transitMs.median)} / ${f1(p.transitMs.p99)} ms; ` : '') +
            (p.phases ? `p99 by phase: boot ${f1(p.phases.boot.p99)} (${p.phases.boot.requests} req), hand-over ${f1(p.phases.handover.p99)} (${p.phases.handover.requests}), rest ${f1(p.phases.rest.p99)} (${p.phases.rest.requests}); ` : '') +
            (p.phases?.over ? `over 1.5x steady (${f1(p.phases.over.limitMs)} ms): boot ${p.phases.over.boot}, hand-over old ${p.phases.over.handoverOld} / new ${p.phases.over.handoverNew}, rest ${p.phases.over.rest} (1% = ${p.phases.over.allowed}); ` : '') +
            (p.phases?.moved ? `hand-over old ${f1(p.phases.handoverOld?.p99 ?? Number.NaN)} (${p.phases.handoverOld?.requests}) / new ${f1(p.phases.handoverNew?.p99 ?? Number.NaN)} (${p.phases.handoverNew?.requests}), first after moving ${f1(p.phases.moved.p99)} (${p.phases.moved.requests}); ` : '') +
            `load ${p.loadavg.start.toFixed(2)} → ${p.loadavg.end.toFixed(2)}` +
            (p.reloadErrors.length ? `; reload errors: ${p.reloadErrors.join(' | ')}` : ''),
        );
      }
      rows.push({ target: name, key: def.key, group: def.group, round, passes });
      o.progress?.(rows);
    }
  }
  return rows;
}
