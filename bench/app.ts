/**
 * The one app every benchmark target runs: bare node, the hitless master, PM2 cluster
 * mode and the naive stop-and-start. It answers `ok\n` after HANDLER_MS milliseconds
 * (default 0) and `/slow` after 1 s, with an explicit Content-Length so raw clients can
 * frame responses.
 *
 * It uses the in-app library's `serve(handler)`: under the master it adopts the
 * inherited socket and announces READY; standalone (bare, naive, PM2) it binds PORT.
 * Under PM2 it also sends `process.send('ready')`, which PM2's `wait_ready` waits for.
 * Until the library exports `serve`, a minimal stand-in does the same with plain
 * node:http (the PM2 docs' graceful pattern: server.close() on SIGINT), and the app
 * says which one it used on stderr so results record it.
 *
 * Hand-over scenarios set BENCH_TRACK_GENERATION=1 (answer with `x-generation`, so a
 * client sees which generation served it) and BENCH_KEEPALIVE_MS (the server's
 * keep-alive timeout, Node's default is 5 s: idle clients must outlive the test), and
 * BENCH_SHUTDOWN_MS (the library's own drain deadline, `timeout`, default 10 s).
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { writeSync } from 'node:fs';

const handlerMs = Number(process.env.HANDLER_MS ?? '0');
const body = Buffer.from('ok\n');
const generation = process.env.BENCH_TRACK_GENERATION === '1' ? process.env.HITLESS_GENERATION : undefined;
const headers = { 'content-type': 'text/plain', 'content-length': body.length, ...(generation ? { 'x-generation': generation } : {}) };
const keepAliveMs = process.env.BENCH_KEEPALIVE_MS ? Number(process.env.BENCH_KEEPALIVE_MS) : undefined;
const shutdownMs = process.env.BENCH_SHUTDOWN_MS ? Number(process.env.BENCH_SHUTDOWN_MS) : undefined;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const delay = req.url === '/slow' ? 1000 : handlerMs;
  const reply = (): void => {
    res.writeHead(200, headers);
    res.end(body);
  };
  if (delay > 0) setTimeout(reply, delay);
  else reply();
}

type Serve = (h: ((req: IncomingMessage, res: ServerResponse) => void) | Server, options: { host: string; timeout?: number }) => unknown;

async function loadServe(): Promise<Serve | undefined> {
  if (process.env.BENCH_APP_PLAIN === '1') return undefined;
  try {
    const lib = (await import('../src/index.js')) as unknown as { serve?: unknown };
    return typeof lib.serve === 'function' ? (lib.serve as Serve) : undefined;
  } catch {
    return undefined;
  }
}

/** Stand-in for the library: adopt fd 3 under the master, else bind PORT; drain on signal. */
function plainServe(h: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer(h);
  if (keepAliveMs !== undefined) server.keepAliveTimeout = keepAliveMs;
  const stop = (): void => {
    server.close(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return new Promise((resolve) => {
    const done = (): void => {
      const readyFd = process.env.HITLESS_READY_FD;
      if (readyFd) writeSync(Number(readyFd), 'READY=1\n');
      resolve(server);
    };
    if (process.env.LISTEN_FDS) server.listen({ fd: 3 }, done);
    else server.listen(Number(process.env.PORT ?? '3000'), process.env.HOST ?? '127.0.0.1', done);
  });
}

const serve = await loadServe();
process.stderr.write(`bench app: pid ${process.pid} using ${serve ? 'hitless serve()' : 'plain node:http'}\n`);
// Standalone the library binds PORT on this host; under the master it adopts fd 3.
function libraryServer(): ((req: IncomingMessage, res: ServerResponse) => void) | Server {
  if (keepAliveMs === undefined) return handler;
  const server = createServer(handler);
  server.keepAliveTimeout = keepAliveMs;
  return server;
}
await (serve ? serve(libraryServer(), { host: '127.0.0.1', ...(shutdownMs ? { timeout: shutdownMs } : {}) }) : plainServe(handler));
// PM2's wait_ready: the instance counts as online only after this message.
process.send?.('ready');
// The harness times the app's own boot (spawn → this line) to subtract it from reload cost.
process.stderr.write(`bench app: pid ${process.pid} serving\n`);
