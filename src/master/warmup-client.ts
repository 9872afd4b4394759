/**
 * The warm-up's client, in a worker thread of the master (src/master/warmup.ts starts it):
 * its requests cost CPU (node:http, ~0.2 ms each here), which runs at the booting worker's
 * lower priority, never at the master's: Linux keeps nice per thread, and lowering is always
 * allowed. It opens `connections` connections to the master's private listener, waits until
 * the master handed each accepted end to the new worker (a `conn` on the worker channel), and
 * sends the paths `rounds` times over them, in parallel: V8 optimises what concurrent
 * requests run (measured: after 3,000 warm-up requests on 16 connections a fresh worker
 * served at ~90 µs of CPU a request, after 3,000 on one connection at ~220 µs, warm ~65).
 *
 * Messages: thread → main `{ open: localPort }` (hand this connection over), `{ done: results }`,
 * `{ error: message }`; main → thread `{ handed: localPort, ok }`.
 */
import type http from 'node:http';
import net from 'node:net';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

export interface WarmupClientData {
  port: number;
  paths: string[];
  rounds: number;
  connections: number;
  host: string;
  userAgent: string;
  timeoutMs: number;
  /** Nice increment for this thread (0: none). */
  nice: number;
}

export interface WarmupTally {
  path: string;
  status: number;
  times: number[];
}

const data = workerData as WarmupClientData;
const port = parentPort;
if (port !== null && data !== null) {
  if (data.nice > 0) {
    try {
      setPriority(0, Math.min(19, getPriority(0) + data.nice));
    } catch {
      // Lowering is always allowed; a platform without it runs at the master's priority.
    }
  }
  // Loaded after the priority is lowered: loading it is a good part of this thread's CPU.
  const { Agent, request } = await import('node:http');
  const waiting = new Map<number, (ok: boolean) => void>();
  port.on('message', (m: { handed?: number; ok?: boolean }) => {
    if (m.handed !== undefined) waiting.get(m.handed)?.(m.ok === true);
  });

  /** A connection the master handed to the worker; rejects when it could not. */
  const open = (): Promise<net.Socket> => new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: data.port }, () => {
      const local = s.localPort ?? 0;
      waiting.set(local, (ok) => {
        waiting.delete(local);
        if (ok) resolve(s);
        else {
          s.destroy();
          reject(new Error('the worker did not take the warm-up connection (its channel closed)'));
        }
      });
      port.postMessage({ open: local });
    });
    s.once('error', reject);
  });

  const tallies = new Map<string, WarmupTally>();
  const queue: string[] = [];
  for (let r = 0; r < data.rounds; r++) queue.push(...data.paths);
  let failed: string | undefined;

  /** One lane: its own keep-alive connection (a new one when the worker closes it), requests one after the other. */
  const lane = async (): Promise<void> => {
    let socket: net.Socket | undefined;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, done: (e: Error | null, s?: net.Socket) => void): undefined => {
      open().then((s) => done(null, (socket = s)), (e: Error) => done(e));
      return undefined;
    };
    try {
      for (let path = queue.shift(); path !== undefined && failed === undefined; path = queue.shift()) {
        const started = performance.now();
        const status = await get(agent, path);
        const t = tallies.get(path) ?? { path, status, times: [] };
        if (t.status < 500) t.status = status;
        t.times.push(performance.now() - started);
        tallies.set(path, t);
        if (status >= 500) failed = path;
      }
    } finally {
      agent.destroy();
      socket?.destroy();
    }
  };

  const get = (agent: http.Agent, path: string): Promise<number> => new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: data.port, agent, path, method: 'GET', headers: { host: data.host, 'user-agent': data.userAgent } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('error', (e: Error) => reject(new Error(`GET ${path}: ${e.message}`)));
    req.end();
  });

  // The main thread terminates this thread on the first message it gets.
  const timer = setTimeout(() => port.postMessage({ error: `not answered within ${data.timeoutMs} ms of READY (readyTimeout)` }), data.timeoutMs);
  Promise.all(Array.from({ length: Math.max(1, Math.min(data.connections, queue.length)) }, () => lane())).then(
    () => port.postMessage({ done: [...tallies.values()] }),
    (e: Error) => port.postMessage({ error: e.message }),
  ).finally(() => clearTimeout(timer));
}
