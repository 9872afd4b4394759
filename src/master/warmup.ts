/**
 * The master's side of a warm-up (src/core/warmup.ts decides when): for each path, a private
 * TCP connection over loopback whose server end is passed to the new worker on the worker
 * channel (a `conn` message, like a handed-over keep-alive connection) and whose client end
 * sends `GET <path>`. The worker serves it as if it had accepted it on its listener, through
 * the same code its clients reach; the master reads only the response it asked for.
 *
 * Why TCP over loopback and not a unix socket pair: a received connection is served by the
 * worker's plain HTTP server only when it is a TCP socket (src/lib/receive.ts), as every
 * handed-over one is, so every worker that takes hand-overs takes a warm-up, whatever version
 * of the library it runs. The listening socket is the master's own, on 127.0.0.1 and an
 * ephemeral port, open only while a warm-up runs, and it takes only the connection the master
 * itself opened (another local process that connects meanwhile is closed at once).
 */
import type http from 'node:http';
import net from 'node:net';
import { connMessage } from '../lib/protocol.js';
import type { WarmupResponse, WarmupTarget, Warmer } from '../core/warmup.js';

/** The User-Agent of warm-up requests (an app can tell them apart in its logs). */
export const WARMUP_USER_AGENT = 'hitless-warmup';

type Host = (listener: string | undefined) => string;

/**
 * A warmer whose requests carry `Host: host(listener)` (the listener's address). The
 * requests of one worker share one keep-alive connection (another is handed over if the
 * worker closes it), one after the other.
 *
 * @example
 * const warmer = createWarmer((name) => listeners.status().find((l) => l.name === name)?.address ?? 'localhost');
 */
export function createWarmer(host: Host): Warmer {
  return async (target, listener, paths, rounds, timeoutMs) => {
    const http = await import('node:http');
    const deadline = AbortSignal.timeout(timeoutMs);
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    // One connection at a time, kept alive between requests; a new pair only when the worker closed it.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, done: (err: Error | null, s?: net.Socket) => void): undefined => {
      connectPair(server, target, listener, deadline).then((s) => done(null, s), (err: Error) => done(err));
      return undefined;
    };
    const out = new Map<string, { status: number; times: number[] }>();
    try {
      for (let round = 0; round < rounds; round++) {
        for (const path of paths) {
          const started = performance.now();
          const status = await get(http.request, agent, path, host(listener), deadline, timeoutMs);
          const seen = out.get(path) ?? { status, times: [] };
          // The first failing status is the one reported; otherwise the last.
          if (seen.status < 500) seen.status = status;
          seen.times.push(performance.now() - started);
          out.set(path, seen);
          if (status >= 500) return summary(out);
        }
      }
    } finally {
      agent.destroy();
      server.close();
    }
    return summary(out);
  };
}

/** One entry per path: its status, the median time of its requests, how many were sent. */
function summary(out: Map<string, { status: number; times: number[] }>): WarmupResponse[] {
  return [...out].map(([path, { status, times }]) => {
    const sorted = [...times].sort((a, b) => a - b);
    return { path, status, ms: Math.round((sorted[(sorted.length - 1) >> 1] ?? 0) * 10) / 10, count: times.length };
  });
}

/**
 * Opens a connection to `server`, passes its accepted end to `target` and resolves with the
 * client end once the worker holds the other one.
 */
async function connectPair(server: net.Server, target: WarmupTarget, listener: string | undefined, deadline: AbortSignal): Promise<net.Socket> {
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect({ host: '127.0.0.1', port });
  try {
    const accepted = await new Promise<net.Socket>((resolve, reject) => {
      const onConnection = (s: net.Socket): void => {
        // Only the connection the master opened: its peer is the client's own address.
        if (client.localPort === undefined || s.remotePort !== client.localPort) {
          s.destroy();
          return;
        }
        cleanup();
        resolve(s);
      };
      const onAbort = (): void => {
        cleanup();
        reject(new Error('no time left for the warm-up (readyTimeout)'));
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const cleanup = (): void => {
        server.off('connection', onConnection);
        deadline.removeEventListener('abort', onAbort);
        client.off('error', onError);
      };
      server.on('connection', onConnection);
      deadline.addEventListener('abort', onAbort);
      client.on('error', onError);
    });
    // The raw handle goes, as a handed-over connection's does; nothing was read from it.
    const handle = (accepted as unknown as { _handle: unknown })._handle;
    const taken = await target.deliver(connMessage(listener), handle);
    // The worker holds its own copy now (or nobody does): the master's closes either way.
    accepted.destroy();
    if (!taken) throw new Error('the worker did not take the warm-up connection (its channel closed)');
    return client;
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/** `GET path` through `agent`; resolves with the status once the body was read. */
function get(request: typeof http.request, agent: http.Agent, path: string, host: string, deadline: AbortSignal, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = request({
      agent,
      path,
      method: 'GET',
      headers: { host, 'user-agent': WARMUP_USER_AGENT },
      signal: deadline,
    }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('error', (err: Error) => {
      reject(deadline.aborted ? new Error(`GET ${path} was not answered within ${timeoutMs} ms of READY (readyTimeout)`) : new Error(`GET ${path}: ${err.message}`));
    });
    req.end();
  });
}
