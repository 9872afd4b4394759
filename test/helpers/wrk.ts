/**
 * wrk as a test load generator. wrk counts a request lost on a reset connection as a
 * socket error (autocannon silently re-sends it), so "zero failed requests" means what
 * it says. Runs are bounded by `duration`; the target must be 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface WrkOptions {
  url: string;
  connections?: number;
  threads?: number;
  /** Seconds. */
  duration?: number;
  /** Send `Connection: close` on every request (a new connection per request). */
  close?: boolean;
  headers?: Record<string, string>;
  /** Seconds before wrk counts a request as timed out (default 5). */
  timeout?: number;
  /** Unix socket path: wrk cannot speak to one, so callers use a TCP URL. */
}

export interface WrkResult {
  requests: number;
  errors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  /** Total socket errors + non-2xx/3xx responses. */
  failed: number;
  /** Distinct values of the X-Generation response header. */
  generations: string[];
  raw: string;
}

// Records which generations answered; cheap per response (a table lookup).
const LUA = `
seen, list = {}, ""
response = function(status, headers, body)
  local g = headers["X-Generation"] or headers["x-generation"]
  if g and not seen[g] then seen[g] = true; list = list .. g .. "," end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local l = t:get("list") or ""
    for g in string.gmatch(l, "([^,]+)") do all[g] = true end
  end
  local out = {}
  for g in pairs(all) do table.insert(out, g) end
  io.write("GENERATIONS " .. table.concat(out, ",") .. "\\n")
end
`;

export interface WrkRun {
  /** Stops wrk early (SIGINT: it prints its summary) and resolves with the result. */
  stop(): Promise<WrkResult>;
  /** Resolves when wrk has finished by itself (after `duration`). */
  done: Promise<WrkResult>;
}

/** Runs wrk for `duration` seconds (the upper bound of the run) and resolves with the counts. */
export function wrk(options: WrkOptions): Promise<WrkResult> {
  return startWrk(options).done;
}

/** Starts wrk in the background; `stop()` ends it early, as a test does once its reloads are done. */
export function startWrk(options: WrkOptions): WrkRun {
  const url = new URL(options.url);
  if (!['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)) {
    throw new Error(`wrk helper only targets loopback, not ${url.hostname}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'hitless-wrk-'));
  const script = join(dir, 'gen.lua');
  writeFileSync(script, LUA);
  const headers = { ...(options.close ? { Connection: 'close' } : {}), ...options.headers };
  const args = [
    `-t${options.threads ?? 2}`,
    `-c${options.connections ?? 50}`,
    `-d${options.duration ?? 5}s`,
    '--timeout',
    `${options.timeout ?? 5}s`,
    '-s',
    script,
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    options.url,
  ];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const done = new Promise<WrkResult>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err) => reject(new Error(`cannot run wrk (apt-get install wrk): ${err.message}`)));
    child.on('close', (code, signal) => {
      rmSync(dir, { recursive: true, force: true });
      if (code === 0 || /requests in/.test(out)) resolve(parseWrk(out));
      else reject(new Error(`wrk exited ${String(code ?? signal)}:\n${out}`));
    });
  });
  return {
    done,
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      return done;
    },
  };
}

export function parseWrk(raw: string): WrkResult {
  const num = (re: RegExp): number => Number(re.exec(raw)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  const errors = {
    connect: Number(sock?.[1] ?? 0),
    read: Number(sock?.[2] ?? 0),
    write: Number(sock?.[3] ?? 0),
    timeout: Number(sock?.[4] ?? 0),
  };
  const requests = num(/(\d+) requests in/);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const generations = (/GENERATIONS (.*)/.exec(raw)?.[1] ?? '').split(',').filter(Boolean).sort((a, b) => Number(a) - Number(b));
  const failed = errors.connect + errors.read + errors.write + errors.timeout + non2xx;
  return { requests, errors, non2xx, failed, generations, raw };
}
