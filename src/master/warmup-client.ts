/**
 * The warm-up's client, a process of its own that the master starts for each warm-up
 * (src/master/warmup.ts): its requests cost CPU (node:http, ~0.2 ms each here: with
 * `warmupRounds` 5000, 1 s per new worker), and that CPU runs at the booting worker's lower
 * priority, never at the master's. A process, not a thread of the master: where the kernel
 * shares CPU time between sessions first (autogroup), a thread's nice value ranks it only
 * within the master's session, which then competes with each serving worker's session as an
 * equal (measured: with 5000 rounds, about three times the boot's slow requests of one
 * round). The master starts it in a session of its own and lowers that session like a
 * booting worker's, and every thread with it, before it sends the first message.
 *
 * It opens `connections` connections to the master's private listener, waits until the
 * master handed each accepted end to the new worker (a `conn` on the worker channel), and
 * sends the paths `rounds` times over them, in parallel: V8 optimises what concurrent
 * requests run (measured: after 3,000 warm-up requests on 16 connections a fresh worker
 * served at ~90 µs of CPU a request, after 3,000 on one connection at ~220 µs, warm ~65).
 *
 * Messages on the IPC channel: master → client `{ start: WarmupClientData }` (once),
 * `{ handed: localPort, ok }`; client → master `{ open: localPort }` (hand this connection
 * over), `{ done: results }`, `{ error: message }`. It exits when the channel closes.
 */
import type http from 'node:http';
import net from 'node:net';

export interface WarmupClientData {
  port: number;
  paths: string[];
  rounds: number;
  connections: number;
  host: string;
  userAgent: string;
  timeoutMs: number;
}

export interface WarmupTally {
  path: string;
  status: number;
  times: number[];
}

/** What the client sends the master. */
export type WarmupClientMessage = { open: number } | { done: WarmupTally[] } | { error: string };
/** What the master sends the client. */
export type WarmupMasterMessage = { start: WarmupClientData } | { handed: number; ok: boolean };

const send = (m: WarmupClientMessage): void => {
  process.send?.(m);
};

/** Runs one warm-up; `waiting` is told of each connection the master handed over. */
async function run(data: WarmupClientData, waiting: Map<number, (ok: boolean) => void>): Promise<void> {
  // Loaded once the master has lowered this process: loading it is a good part of its CPU.
  const { Agent, request } = await import('node:http');

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
      send({ open: local });
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

  // The master ends this process on the first message it gets.
  const timer = setTimeout(() => send({ error: `not answered within ${data.timeoutMs} ms of READY (readyTimeout)` }), data.timeoutMs);
  await Promise.all(Array.from({ length: Math.max(1, Math.min(data.connections, queue.length)) }, () => lane())).then(
    () => send({ done: [...tallies.values()] }),
    (e: Error) => send({ error: e.message }),
  ).finally(() => clearTimeout(timer));
}

if (process.send !== undefined) {
  const handed = new Map<number, (ok: boolean) => void>();
  let started = false;
  process.on('message', (m: WarmupMasterMessage) => {
    if ('handed' in m) handed.get(m.handed)?.(m.ok === true);
    else if ('start' in m && !started) {
      started = true;
      void run(m.start, handed);
    }
  });
  // The master is gone (or done with it): nothing left to warm.
  process.once('disconnect', () => process.exit(0));
}
