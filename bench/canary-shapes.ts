/**
 * The client shapes bench/canary.ts runs each release under (issue 18):
 *
 * - `close`: wrk sending `Connection: close` (a new connection per request, so the kernel
 *   gives the canary its share of new connections): the shape the canary was first built for.
 * - `keepalive`: the project's load client with a fixed set of keep-alive connections opened
 *   before the reload and never re-opened (it counts every connection it opens), as an API
 *   client or a proxy pool does: the canary sees only what the serving workers hand it.
 * - `nginx`: the same client through nginx with an upstream `keepalive` pool.
 * - `nginx light`: 4 clients through the same nginx, 20–60 ms between requests: nginx rarely
 *   has more than one request upstream, so its pool (which reuses the connection it released
 *   last) sends nearly everything over one or two connections.
 * - `lifo`: Node's own http.Agent (keep-alive, `scheduling: 'lifo'`) with 8 sockets opened by
 *   one burst, then one request at a time: one socket carries everything.
 *
 * The keep-alive shapes run twice, with `canary.connections` "auto" (the split) and 0 (what
 * a canary got before issue 18: nothing), side by side in one run; the light pools with and
 * without the lending of a starved canary (HITLESS_CANARY_LEND=0: what a canary got before
 * it).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { now, startLoad, tally } from './loadgen.js';
import { freePort, spawnGroup, waitForPort, type Spawned } from './proc.js';
import { startWrk } from './wrk.js';

export interface Shape {
  name: string;
  /** `canary.connections` for this shape's runs. */
  connections: 'auto' | 0;
  client: 'wrk-close' | 'keepalive' | 'nginx' | 'nginx-light' | 'lifo';
  /** False: the master runs with HITLESS_CANARY_LEND=0 (a starved canary is lent nothing more). */
  lend?: false;
}

export const SHAPES: Shape[] = [
  { name: 'close', connections: 'auto', client: 'wrk-close' },
  { name: 'keepalive', connections: 'auto', client: 'keepalive' },
  { name: 'keepalive, connections 0', connections: 0, client: 'keepalive' },
  { name: 'nginx', connections: 'auto', client: 'nginx' },
  { name: 'nginx, connections 0', connections: 0, client: 'nginx' },
  { name: 'nginx light', connections: 'auto', client: 'nginx-light' },
  { name: 'nginx light, no lending', connections: 'auto', client: 'nginx-light', lend: false },
  { name: 'lifo', connections: 'auto', client: 'lifo' },
  { name: 'lifo, no lending', connections: 'auto', client: 'lifo', lend: false },
];

/** Client connections: wrk's 16 (as before), a fixed keep-alive set of 24, 16 through nginx, 4 light ones, the Agent's 8 sockets. */
const CONNECTIONS = { 'wrk-close': 16, keepalive: 24, nginx: 16, 'nginx-light': 4, lifo: 8 } as const;
/** Keep-alive clients pause 5–25 ms between requests: ~1,500 req/s, modest on 2 shared cores. */
const THINK_MS: [number, number] = [5, 25];
/** The light clients behind nginx: 20–60 ms, ~100 req/s. */
const LIGHT_THINK_MS: [number, number] = [20, 60];

/** What the client counted over the whole run. */
export interface ClientCount {
  requests: number;
  /** Non-2xx responses (the canary's 500s; 502s from nginx would land here too). */
  bad: number;
  connectionErrors: number;
  /** Connections the client opened, and how many it started with (wrk: not counted). */
  opened: number | undefined;
  initial: number;
}

export interface RunningLoad {
  /** Where the load goes (the master directly, or nginx). */
  stop(): Promise<ClientCount>;
}

/** Starts the shape's client against the master on `port` for at most `durationMs`. */
export async function startClient(shape: Shape, port: number, durationMs: number): Promise<RunningLoad> {
  const n = CONNECTIONS[shape.client];
  if (shape.client === 'wrk-close') {
    const wrk = startWrk({ port, connections: n, durationMs, keepAlive: false });
    return {
      async stop() {
        const w = await wrk.stop();
        const e = w.errors;
        return { requests: w.requests, bad: w.non2xx, connectionErrors: e.connect + e.read + e.write + e.timeout, opened: undefined, initial: n };
      },
    };
  }
  if (shape.client === 'lifo') return startLifoPool(port, n, durationMs);
  const nginx = shape.client === 'nginx' || shape.client === 'nginx-light' ? await startNginx(port) : undefined;
  const thinkMs = shape.client === 'nginx-light' ? LIGHT_THINK_MS : THINK_MS;
  const run = startLoad({ port: nginx?.port ?? port, connections: n, durationMs, keepAlive: true, thinkMs });
  return {
    async stop() {
      const r = await run.stop();
      await nginx?.stop();
      const t = tally(r);
      const e = t.errors;
      return { requests: t.requests, bad: t.non2xx, connectionErrors: e.connect + e.read + e.write + e.timeout, opened: r.opened, initial: n };
    },
  };
}

/** One answered request of {@link lifoPool}: when (loadgen's `now()`), which generation, over which local port. */
export interface PoolAnswer {
  at: number;
  generation: string;
  port: number;
  status: number;
}

/**
 * Node's http.Agent as a pool (keep-alive, `scheduling: 'lifo'`), as a proxy's upstream pool
 * or an API client is: `size` sockets opened by one burst, then one request at a time, so the
 * socket released last carries everything and the rest sit idle. Bounded by `maxRequests`
 * and `durationMs`, or until stopped. The canary bench's `lifo` shape and the canary tests
 * (test/canary/keepalive.test.ts) run it.
 *
 * @example
 * const pool = lifoPool('http://127.0.0.1:8080/', 8, { durationMs: 15_000 });
 * await pool.stop(); // pool.answers, pool.errors, pool.opened()
 */
export function lifoPool(url: string, size: number, bounds: { maxRequests?: number; durationMs?: number } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: size, scheduling: 'lifo' });
  const answers: PoolAnswer[] = [];
  const errors: string[] = [];
  const maxRequests = bounds.maxRequests ?? 2_000_000;
  const until = now() + (bounds.durationMs ?? 3_600_000);
  let opened = 0;
  let stopped = false;
  const get = (): Promise<void> => new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        answers.push({ at: now(), generation: String(res.headers['x-generation']), port: req.socket?.localPort ?? 0, status: res.statusCode ?? 0 });
        resolve();
      });
    });
    req.on('socket', () => {
      if (!req.reusedSocket) opened++;
    });
    req.on('error', (e) => {
      errors.push(e.message);
      resolve();
    });
  });
  const running = (async () => {
    await Promise.all(Array.from({ length: size }, get));
    while (!stopped && now() < until && answers.length + errors.length < maxRequests) await get();
  })();
  return {
    answers,
    errors,
    opened: () => opened,
    async stop(): Promise<void> {
      stopped = true;
      await running;
      agent.destroy();
    },
  };
}

/** The `lifo` shape's client: {@link lifoPool} against the master on `port`, counted. */
function startLifoPool(port: number, size: number, durationMs: number): RunningLoad {
  const pool = lifoPool(`http://127.0.0.1:${port}/`, size, { durationMs });
  return {
    async stop() {
      await pool.stop();
      const bad = pool.answers.filter((a) => a.status >= 300).length;
      return { requests: pool.answers.length, bad, connectionErrors: pool.errors.length, opened: pool.opened(), initial: size };
    },
  };
}

/** nginx in the foreground with an upstream keepalive pool to 127.0.0.1:`upstream`. */
async function startNginx(upstream: number): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-bench-nginx-'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), `daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:${upstream}; keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_next_upstream off; }
  }
}
`);
  const p: Spawned = spawnGroup('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
  await waitForPort(port, 10_000);
  return {
    port,
    async stop() {
      p.killGroup('SIGTERM');
      await p.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
