/**
 * `node build/bench/websockets.js [--clients 1000] [--reloads 3] [--every 8s] [--before <dir>]`: what a
 * reload costs WebSocket clients (issue 24). Per variant: a hitless master (2 workers) on
 * 127.0.0.1 runs the chat test fixture (build/test/fixtures/websocket/chat.js); `clients`
 * real `ws` clients (in this process) each say a nick, then send a message every second
 * and check each answer's per-connection count; a client whose connection closes
 * reconnects at once (the worst case: no backoff). `reloads` reloads, `every` apart.
 *
 * Variants: WebSockets left open until the worker's 10 s deadline cuts them (what happened
 * before issue 24 without an `onUpgrade`: the fixture's no-op `onUpgrade`, WS_KEEP=1),
 * `drain.spread` 0 (every WebSocket closed at once, as the `onUpgrade` recipe did),
 * `drain.spread` 5 s (the default), and hitless/ws hand-over (WS_MOVE=1). `--before <dir>`
 * adds the same app under another build of hitless (its `build/` with a copy of the chat
 * fixture, without hitless/ws), e.g. the commit before this work, measured beside it.
 * Figures: reconnects per reload, the peak of new connections in any 1 s window (all land
 * on the new generation: the old one no longer accepts), close codes, answers whose count
 * broke (state lost), and the reload's own duration. Prints a markdown table and writes
 * bench/results/websockets-<date>.json. The machine is shared: the load average is noted.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { parseDuration } from '../src/config/duration.js';
import type { ReloadOutcome } from '../src/core/types.js';
import { freePort, killAllGroups, run, sleep, spawnGroup, waitFor, waitForPort } from './proc.js';
import { cliPath } from './targets/hitless.js';
import { repoRoot } from './targets/target.js';
import { flagValue } from './args.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => flagValue(argv, name, fallback);
const clients = Number(flag('--clients', '1000'));
const reloads = Number(flag('--reloads', '3'));
const everyMs = parseDuration(flag('--every', '8s'));
const fixture = join(repoRoot, 'build', 'test', 'fixtures', 'websocket', 'chat.js');

/** Another build of hitless to measure beside this one (`--before <dir>`: its CLI and its copy of the chat fixture). */
const beforeDir = argv.includes('--before') ? argv[argv.indexOf('--before') + 1] : undefined;

interface Variant {
  name: string;
  /** `drain.spread` (ms); undefined: no `drain` key (a build that does not know it). */
  spread: number | undefined;
  env: Record<string, string>;
  /** A build of hitless other than this repository's. */
  repo?: string;
  /** Pause after each reload (default `--every`): longer than the deadline where the deadline cuts. */
  everyMs?: number;
}

const VARIANTS: Variant[] = [
  ...(beforeDir ? [{ name: `before: ${beforeDir} (no close frame; the reload waits for the cut)`, spread: undefined, env: { WS_TIMEOUT: '10000' }, repo: beforeDir, everyMs: 12_000 }] : []),
  { name: 'no close (onUpgrade no-op): cut at the worker\'s 10 s deadline', spread: 0, env: { WS_KEEP: '1', WS_TIMEOUT: '10000' }, everyMs: 12_000 },
  { name: 'close, drain.spread 0 (all at once)', spread: 0, env: {} },
  { name: 'close, drain.spread 5 s (default)', spread: 5000, env: {} },
  { name: 'hand-over (hitless/ws)', spread: 5000, env: { WS_MOVE: '1' } },
];

interface VariantResult {
  variant: string;
  reloads: number;
  reloadMs: number[];
  reconnects: number;
  /** Most new connections opened in any 1 s window after the first connect. */
  peakPerSecond: number;
  /** From the first close to the last close of each reload (ms). */
  closeWindowMs: number[];
  codes: Record<string, number>;
  answers: number;
  stateBroken: number;
  movedWebSockets: number;
  /** How long each old generation took to drain (its reload-drained event). */
  drainedMs: number[];
}

/** One client that reconnects at once when closed, talks every second and checks its count. */
class Client {
  opens: number[] = [];
  codes: number[] = [];
  closes: number[] = [];
  answers = 0;
  broken = 0;
  #ws: WebSocket | undefined;
  #count = 0;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly url: string, private readonly nick: string) {}

  connect(): Promise<void> {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url);
      this.#ws = ws;
      ws.on('open', () => {
        this.opens.push(performance.now());
        this.#count = 0;
        this.#send({ nick: this.nick });
        resolve();
      });
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as { count: number; nick: string };
        this.answers++;
        if (m.count !== ++this.#count || m.nick !== this.nick) {
          this.broken++;
          this.#count = m.count;
        }
      });
      ws.on('error', () => {});
      ws.on('close', (code) => {
        this.codes.push(code);
        this.closes.push(performance.now());
        if (!this.#stopped) setImmediate(() => void this.connect());
        resolve();
      });
    });
  }

  talk(): void {
    this.#timer = setInterval(() => this.#ws?.readyState === WebSocket.OPEN && this.#send({}), 1000 + Math.random() * 100);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#ws?.terminate();
  }

  #send(extra: Record<string, unknown>): void {
    this.#ws?.send(JSON.stringify({ ...extra, seq: ++this.#seq }));
  }
}

function peakInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while ((t[i] as number) - (t[j] as number) >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

async function variant(v: Variant): Promise<VariantResult> {
  const cli = v.repo ? join(v.repo, 'build', 'src', 'cli', 'main.js') : cliPath;
  const app = v.repo ? join(v.repo, 'build', 'test', 'fixtures', 'websocket', 'chat.js') : fixture;
  const dir = mkdtempSync(join(tmpdir(), 'hitless-bench-ws-'));
  const port = await freePort();
  mkdirSync(join(dir, 'run'));
  const config = join(dir, 'hitless.json');
  writeFileSync(config, JSON.stringify({
    command: ['node', app], listen: [`127.0.0.1:${port}`], workers: 2, drainTimeout: '30s', runDir: join(dir, 'run'), logFormat: 'json',
    env: { WS_TIMEOUT: '20000', ...v.env }, ...(v.spread === undefined ? {} : { drain: { spread: v.spread } }),
  }));
  const master = spawnGroup('node', [cli, 'start', '--config', config], { cwd: dir });
  const all: Client[] = [];
  try {
    await waitForPort(port, 30_000);
    await waitFor('the first generation', () => /master ready/.test(master.output()), 30_000);
    for (let i = 0; i < clients; i += 100) {
      const batch = Array.from({ length: Math.min(100, clients - i) }, (_, k) => new Client(`ws://127.0.0.1:${port}/`, `u${i + k}`));
      await Promise.all(batch.map((c) => c.connect()));
      all.push(...batch);
    }
    for (const c of all) c.talk();
    await sleep(2000);
    const connected = performance.now();
    const reloadMs: number[] = [];
    const closeWindowMs: number[] = [];
    for (let r = 0; r < reloads; r++) {
      const before = performance.now();
      const out = await run('node', [cli, 'reload', '--json', '--config', config], {}, 120_000);
      const outcome = JSON.parse(out.stdout) as ReloadOutcome;
      if (!outcome.ok) throw new Error(`reload failed: ${out.stdout}${out.stderr}`);
      reloadMs.push(outcome.durationMs);
      await sleep(v.everyMs ?? everyMs);
      const closes = all.flatMap((c) => c.closes.filter((t) => t >= before));
      closeWindowMs.push(closes.length ? Math.max(...closes) - Math.min(...closes) : 0);
    }
    // Moved WebSockets are counted in each old generation's reload-drained event.
    const drained = master.output().split('\n').filter((l) => l.includes('"event":"reload-drained"'))
      .map((l) => JSON.parse(l) as { webSockets?: number; ms: number });
    const moved = drained.reduce((n, d) => n + (d.webSockets ?? 0), 0);
    const opens = all.flatMap((c) => c.opens.filter((t) => t > connected));
    const codes: Record<string, number> = {};
    for (const code of all.flatMap((c) => c.codes)) codes[code] = (codes[code] ?? 0) + 1;
    return {
      variant: v.name, reloads, reloadMs, reconnects: opens.length, peakPerSecond: peakInWindow(opens, 1000), closeWindowMs, codes,
      answers: all.reduce((a, c) => a + c.answers, 0), stateBroken: all.reduce((a, c) => a + c.broken, 0), movedWebSockets: moved,
      drainedMs: drained.map((d) => d.ms),
    };
  } finally {
    for (const c of all) c.stop();
    master.child.kill('SIGTERM');
    await Promise.race([master.exited, sleep(40_000)]);
    master.killGroup('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const f0 = (x: number): string => x.toFixed(0);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const load = { start: loadavg()[0] ?? 0, end: 0 };
const results: VariantResult[] = [];
for (const v of VARIANTS) {
  const r = await variant(v);
  results.push(r);
  process.stdout.write(`${v.name}: ${r.reconnects} reconnects over ${r.reloads} reloads, peak ${r.peakPerSecond} new connections/s, codes ${JSON.stringify(r.codes)}, ${r.stateBroken} broken answers of ${r.answers}\n`);
}
load.end = loadavg()[0] ?? 0;
killAllGroups();

const table = [
  '| variant | reconnects per reload | peak new connections / s on the new generation | closes spread over (ms, median) | close codes (all reloads) | WebSockets moved (all reloads) | answers out of step with their connection / answers | reload done in (ms, median) | old generation gone after (ms, median) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map((r) => `| ${r.variant} | ${f0(r.reconnects / r.reloads)} | ${r.peakPerSecond} | ${f0(median(r.closeWindowMs))} | ${Object.entries(r.codes).map(([c, n]) => `${c}: ${n}`).join(', ') || 'none'} | ${r.movedWebSockets} | ${r.stateBroken} / ${r.answers} | ${f0(median(r.reloadMs))} | ${f0(median(r.drainedMs))} |`),
].join('\n');
process.stdout.write(`\n${table}\n\n${clients} clients, ${reloads} reloads ${everyMs} ms apart, 2 workers; load average ${load.start.toFixed(2)} → ${load.end.toFixed(2)}\n`);
const date = new Date().toISOString().slice(0, 10);
mkdirSync(join(repoRoot, 'bench', 'results'), { recursive: true });
writeFileSync(join(repoRoot, 'bench', 'results', `websockets-${date}.json`), JSON.stringify({ date, clients, reloads, everyMs, load, results }, null, 2) + '\n');
