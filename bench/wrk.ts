/**
 * Runs wrk (the Debian package) and parses its report. wrk counts a request lost on a
 * reset connection as a read error instead of re-sending it, which is why failures are
 * counted with it (DESIGN.md, "Count failures with wrk").
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnGroup } from './proc.js';

export interface WrkOptions {
  port: number;
  connections: number;
  durationMs: number;
  threads?: number;
  keepAlive: boolean;
  path?: string;
  timeoutMs?: number;
  /**
   * Pace each connection like a user: before every request wrk waits a uniform random
   * think time in [min, max] ms (its Lua `delay()`), and sends `POST` with this body.
   */
  paced?: { thinkMs: [number, number]; body: string };
}

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Latency percentiles in ms (wrk --latency). */
  p50: number;
  p99: number;
  errors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  raw: string;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us': return v / 1000;
    case 'ms': return v;
    case 's': return v * 1000;
    case 'm': return v * 60_000;
    default: return Number.NaN;
  }
}

/** Parse wrk's text report. */
export function parseWrk(raw: string): WrkResult {
  const num = (re: RegExp): number => Number(re.exec(raw)?.[1] ?? 0);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(raw);
    return m?.[1] && m[2] ? toMs(m[1], m[2]) : Number.NaN;
  };
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(raw);
  if (!done?.[1] || !done[2] || !done[3]) throw new Error(`could not parse wrk output:\n${raw}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  return {
    requests: Number(done[1]),
    seconds: toMs(done[2], done[3]) / 1000,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct('50'),
    p99: pct('99'),
    errors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    raw,
  };
}

/** Total failed requests by wrk's count (socket errors; non-2xx counted apart). */
export function wrkFailures(r: Pick<WrkResult, 'errors'>): number {
  return r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
}

/** wrk's Lua script for a paced POST: `delay()` is called before every request. */
function pacedScript(p: NonNullable<WrkOptions['paced']>): string {
  const [min, max] = p.thinkMs;
  return [
    'wrk.method = "POST"',
    `wrk.body = ${JSON.stringify(p.body)}`,
    'wrk.headers["Content-Type"] = "application/json"',
    // Each thread has its own Lua state: seed it apart so threads do not think in step.
    'function setup(thread) thread:set("seed", math.random(1, 2^30)) end',
    'function init(args) math.randomseed(seed or os.time()) end',
    `function delay() return math.random(${min}, ${max}) end`,
    '',
  ].join('\n');
}

export interface WrkRun {
  done: Promise<WrkResult>;
  /** End the run now (SIGINT: wrk stops and prints its report). */
  stop(): Promise<WrkResult>;
}

/**
 * Start wrk against 127.0.0.1:port; `done` resolves with its parsed report when the
 * duration is over or `stop()` was called.
 */
export function startWrk(o: WrkOptions): WrkRun {
  const args = [
    `-t${o.threads ?? 1}`,
    `-c${o.connections}`,
    `-d${Math.max(1, Math.round(o.durationMs / 1000))}s`,
    `--timeout`, `${Math.round((o.timeoutMs ?? 5000) / 1000)}s`,
    '--latency',
  ];
  if (!o.keepAlive) args.push('-H', 'Connection: close');
  let dir: string | undefined;
  if (o.paced) {
    dir = mkdtempSync(join(tmpdir(), 'hitless-bench-wrk-'));
    const script = join(dir, 'paced.lua');
    writeFileSync(script, pacedScript(o.paced));
    args.push('-s', script);
  }
  args.push(`http://127.0.0.1:${o.port}${o.path ?? '/'}`);
  const p = spawnGroup('wrk', args);
  const done = (async () => {
    const { code } = await p.exited;
    p.killGroup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (code !== 0) throw new Error(`wrk exited with ${code}: ${p.output()}`);
    return parseWrk(p.output());
  })();
  return {
    done,
    stop() {
      p.child.kill('SIGINT');
      return done;
    },
  };
}

/**
 * Run wrk against 127.0.0.1:port and resolve with its parsed report.
 *
 * @example
 * const r = await runWrk({ port, connections: 50, durationMs: 5000, keepAlive: true });
 */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  return startWrk(o).done;
}

/** Is wrk installed? */
export async function wrkVersion(): Promise<string | undefined> {
  try {
    const p = spawnGroup('wrk', ['--version']);
    await p.exited;
    return /wrk (\S+)/.exec(p.output())?.[1];
  } catch {
    return undefined;
  }
}
