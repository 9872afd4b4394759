/**
 * The master's side of a warm-up (src/core/warmup.ts decides when): private TCP connections
 * over loopback whose accepted ends are passed to the new worker on the worker channel (a
 * `conn` message, like a handed-over keep-alive connection) and whose other ends send the
 * requests, from a process of the master's at the booting worker's lower priority
 * (warmup-client.ts says why a process).
 * The worker serves them as if it had accepted them on its listener, through the same code
 * its clients reach; the master reads only the responses it asked for.
 *
 * Why TCP over loopback and not a unix socket pair: a received connection is served by the
 * worker's plain HTTP server only when it is a TCP socket (src/lib/receive.ts), as every
 * handed-over one is, so every worker that takes hand-overs takes a warm-up, whatever version
 * of the library it runs. The listening socket is the master's own, on 127.0.0.1 and an
 * ephemeral port, open only while a warm-up runs, and it passes on only the connections its
 * own thread opened (another local process that connects meanwhile is closed at once).
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { connMessage } from '../lib/protocol.js';
import type { WarmupResponse, WarmupTarget, Warmer } from '../core/warmup.js';
import type { WarmupClientData, WarmupClientMessage, WarmupMasterMessage, WarmupTally } from './warmup-client.js';

/** The User-Agent of warm-up requests (an app can tell them apart in its logs). */
export const WARMUP_USER_AGENT = 'hitless-warmup';
/** Connections a warm-up uses at most, in parallel (V8 optimises what concurrent requests run). */
export const WARMUP_CONNECTIONS = 8;

const CLIENT = fileURLToPath(new URL('./warmup-client.js', import.meta.url));

type Host = (listener: string | undefined) => string;

/**
 * A warmer whose requests carry `Host: host(listener)` (the listener's address), from a
 * client process in a session of its own, which `lower(pid, increment)` lowers by the
 * target's booting nice increment over the master's (`nice(target)`; 0: left alone) before
 * the client gets its first message.
 *
 * @example
 * const warmer = createWarmer((name) => listeners.status().find((l) => l.name === name)?.address ?? 'localhost', () => 10, lowerForGood);
 */
export function createWarmer(host: Host, nice: (target: WarmupTarget) => number, lower: (pid: number, increment: number) => void): Warmer {
  return async (target, listener, paths, rounds, timeoutMs) => {
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    const data: WarmupClientData = {
      port: (server.address() as net.AddressInfo).port, paths, rounds, connections: WARMUP_CONNECTIONS,
      host: host(listener), userAgent: WARMUP_USER_AGENT, timeoutMs,
    };
    // Its own session (detached), so that lowering its session ranks it below the serving
    // workers' where sessions are ranked first; none of the master's node flags, nor the
    // NODE_OPTIONS the master was started with (preloads meant for apps).
    const { NODE_OPTIONS: _apps, ...env } = process.env;
    const client = fork(CLIENT, [], { detached: true, execArgv: [], env, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'json' });
    const tell = (m: WarmupMasterMessage): void => {
      if (client.connected) client.send(m);
    };
    // The client's connections by their local port, met with what the server accepted.
    const accepted = new Map<number, net.Socket>();
    const expected = new Set<number>();
    const handOver = (local: number, s: net.Socket): void => {
      accepted.delete(local);
      expected.delete(local);
      const handle = (s as unknown as { _handle: unknown })._handle;
      // The raw handle goes, as a handed-over connection's does; nothing was read from it.
      void target.deliver(connMessage(listener), handle).then((ok) => {
        // The worker holds its own copy now (or nobody does): the master's closes either way.
        s.destroy();
        tell({ handed: local, ok });
      });
    };
    server.on('connection', (s: net.Socket) => {
      const peer = s.remotePort ?? 0;
      if (expected.has(peer)) handOver(peer, s);
      else accepted.set(peer, s);
    });
    try {
      const tallies = await new Promise<WarmupTally[]>((resolve, reject) => {
        client.on('message', (m: WarmupClientMessage) => {
          if ('open' in m) {
            const s = accepted.get(m.open);
            if (s) handOver(m.open, s);
            else expected.add(m.open);
          } else if ('done' in m) resolve(m.done);
          else reject(new Error(m.error));
        });
        client.once('error', reject);
        client.once('exit', (code, signal) => reject(new Error(`the warm-up client ended early (${signal ?? `exit code ${code}`})`)));
        client.once('spawn', () => {
          if (client.pid !== undefined) {
            const increment = nice(target);
            if (increment > 0) lower(client.pid, increment);
          }
          tell({ start: data });
        });
      });
      return tallies.map(summary);
    } finally {
      if (client.pid !== undefined && client.exitCode === null && client.signalCode === null) {
        const exited = new Promise((resolve) => client.once('exit', resolve));
        client.kill('SIGKILL');
        await exited;
      }
      server.close();
      // Connections of another local process that connected meanwhile.
      for (const s of accepted.values()) s.destroy();
    }
  };
}

/** One path's responses: its status (the first 5xx, else the last), the median time, how many. */
function summary(t: WarmupTally): WarmupResponse {
  const sorted = [...t.times].sort((a, b) => a - b);
  return { path: t.path, status: t.status, ms: Math.round((sorted[(sorted.length - 1) >> 1] ?? 0) * 10) / 10, count: t.times.length };
}
