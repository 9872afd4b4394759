/**
 * serve(): the one-liner for the common case. Creates the server (or takes yours), tracks
 * it, adopts the inherited socket (without a name: also every other one no listen() claims)
 * or binds the fallback, announces readiness, and drains on stop signals.
 */
import type * as http from 'node:http';
import * as net from 'node:net';
import { appFix } from './apps.js';
import { listenAs } from './listen.js';
import { nodeHttp } from './node-http.js';
import { invalid, knownKeys, LISTEN_KEYS, object, resolveListenOptions, resolveShutdownOptions, SHUTDOWN_KEYS } from './options.js';

/** serve()'s options: listen()'s, with the shutdown ones given directly instead of `shutdown`. */
const SERVE_KEYS: readonly string[] = [...LISTEN_KEYS.filter((k) => k !== 'shutdown'), ...SHUTDOWN_KEYS];
import { openChannel, ready } from './ready.js';
import { serveUnclaimedWith } from './relay.js';
import { shutdown } from './shutdown.js';
import type { AnyServer, ServeHandle, ServeOptions, ShutdownOptions } from './types.js';

/**
 * Serves `handler` (or an existing server) with zero-downtime reloads: listens on the
 * inherited socket under the master (else on `port`, env PORT or 3000), writes READY once
 * listening, and drains gracefully on SIGTERM/SIGINT. `close()` drains on demand. Without
 * `name`, under the master it serves every inherited socket that no `listen(server, name)`
 * claimed by the time it announces readiness (the next turn of the event loop). The handle's
 * `server` is the `http.Server` made for a handler, or the server given, with its own type.
 *
 * @example
 * import { serve } from 'hitless';
 * await serve((req, res) => res.end('hello\n'), { port: 8080 });
 */
export function serve(handler: http.RequestListener, options?: ServeOptions): Promise<ServeHandle<http.Server>>;
/**
 * Serves an existing server (https, http2, a framework's): the handle's `server` has its type.
 *
 * @example
 * const { server } = await serve(https.createServer({ key, cert }, app));
 */
export function serve<S extends AnyServer>(server: S, options?: ServeOptions): Promise<ServeHandle<S>>;
/**
 * Serves a handler or a server, not known which.
 *
 * @example
 * await serve(process.env.TLS ? https.createServer(tls, app) : app);
 */
export function serve(handlerOrServer: http.RequestListener | AnyServer, options?: ServeOptions): Promise<ServeHandle>;
export async function serve(handlerOrServer: http.RequestListener | AnyServer, options?: ServeOptions): Promise<ServeHandle> {
  let server: AnyServer;
  if (typeof handlerOrServer === 'function') server = nodeHttp.createServer(handlerOrServer);
  else if (handlerOrServer instanceof net.Server) server = handlerOrServer;
  else invalid('serve()', 'handlerOrServer', handlerOrServer, 'a request handler or a server', appFix('serve', handlerOrServer, 'serve((req, res) => res.end("ok"))'));

  // listen() takes a name as a string; serve() only an object: say so, not "unknown option "0"".
  if (typeof options === 'string') {
    invalid('serve()', 'options', options, 'an object (serve() takes no name string, unlike listen())', `serve(app, { name: ${JSON.stringify(options)} })`);
  }
  const input = object('serve()', 'options', options);
  const listenPart: Record<string, unknown> = {};
  const shutdownPart: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if ((SHUTDOWN_KEYS as readonly string[]).includes(key)) shutdownPart[key] = value;
    else listenPart[key] = value;
  }
  // Validate everything first, so a typo fails before anything listens; an unknown key is
  // named with serve()'s own options (the listen ones but `shutdown`, and the shutdown ones).
  if ('shutdown' in listenPart) invalid('serve()', 'shutdown', listenPart.shutdown, 'left out', `pass ${SHUTDOWN_KEYS.join(', ')} directly`);
  knownKeys('serve()', input, SERVE_KEYS);
  resolveListenOptions('serve()', listenPart);
  const shutdownOptions = resolveShutdownOptions('serve()', shutdownPart as ShutdownOptions);
  // A bad HITLESS_READY_FD throws here, to the caller, before anything listens: after the
  // listen, the rejected promise would leave a live listener nobody can close.
  openChannel();

  const result = await listenAs('serve()', server, { ...listenPart, shutdown: shutdownPart as ShutdownOptions });
  // Without a name, this server also serves every other inherited socket that no listen()
  // claims by name (relay.ts): an address added to the master's config is served, not a
  // black hole. Readiness (which adopts them) comes on the next turn of the event loop, so
  // `await serve(app); await listen(admin, 'admin')` still gives 'admin' to `admin`.
  if (result.inherited && listenPart.name === undefined) serveUnclaimedWith(server);
  setImmediate(ready);
  return {
    server,
    address: result.address,
    inherited: result.inherited,
    close: () => shutdown(server, shutdownOptions),
  };
}
