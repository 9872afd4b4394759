/**
 * serve(): the one-liner for the common case. Creates the server (or takes yours), tracks
 * it, adopts the inherited socket or binds the fallback, announces readiness, and drains
 * on stop signals.
 */
import http from 'node:http';
import net from 'node:net';
import { listen } from './listen.js';
import { invalid, resolveListenOptions, resolveShutdownOptions, SHUTDOWN_KEYS } from './options.js';
import { ready } from './ready.js';
import { shutdown } from './shutdown.js';
import type { AnyServer, ServeHandle, ServeOptions, ShutdownOptions } from './types.js';

/**
 * Serves `handler` (or an existing server) with zero-downtime reloads: listens on the
 * inherited socket under the master (else on `port`, env PORT or 3000), writes READY once
 * listening, and drains gracefully on SIGTERM/SIGINT. `close()` drains on demand.
 *
 * @example
 * import { serve } from 'hitless';
 * await serve((req, res) => res.end('hello\n'), { port: 8080 });
 */
export async function serve(handlerOrServer: http.RequestListener | AnyServer, options?: ServeOptions): Promise<ServeHandle> {
  let server: AnyServer;
  if (typeof handlerOrServer === 'function') server = http.createServer(handlerOrServer);
  else if (handlerOrServer instanceof net.Server) server = handlerOrServer;
  else invalid('serve()', 'handlerOrServer', handlerOrServer, 'a request handler or a server', 'serve((req, res) => res.end("ok"))');

  const input = (options ?? {}) as Record<string, unknown>;
  const listenPart: Record<string, unknown> = {};
  const shutdownPart: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if ((SHUTDOWN_KEYS as readonly string[]).includes(key)) shutdownPart[key] = value;
    else listenPart[key] = value;
  }
  // Validate everything first, so a typo fails before anything listens.
  if ('shutdown' in listenPart) invalid('serve()', 'shutdown', listenPart.shutdown, 'left out', 'pass timeout, idleGrace, onUpgrade directly');
  resolveListenOptions('serve()', listenPart);
  const shutdownOptions = resolveShutdownOptions('serve()', shutdownPart as ShutdownOptions);

  const result = await listen(server, { ...listenPart, shutdown: shutdownPart as ShutdownOptions });
  ready();
  return {
    server,
    address: result.address,
    inherited: result.inherited,
    close: () => shutdown(server, shutdownOptions),
  };
}
