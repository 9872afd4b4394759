/**
 * listen(): adopt the inherited socket under the master (systemd convention), or bind the
 * fallback address standalone. The server is instrumented and registered with the
 * lifecycle before it listens, so no connection escapes the drain bookkeeping.
 */
import { fstatSync } from 'node:fs';
import * as net from 'node:net';
import { HitlessError } from '../errors.js';
import { appFix } from './apps.js';
import { DEFAULT_PORT } from './defaults.js';
import { openIpc } from './channel.js';
import { claimFd, claimOf, inheritedFds, releaseFd } from './fds.js';
import { register } from './lifecycle.js';
import { checkServer, invalid, resolveListenOptions } from './options.js';
import { awaitingReady, openChannel } from './ready.js';
import { instrument } from './track.js';
import type { AnyServer, ListenOptions, ListenResult } from './types.js';

/** Where to listen: an inherited fd (Node accepts { fd } as a handle) or an address. */
type Bind = { fd: number } | net.ListenOptions;

// listen(2) errors meaning the fd is not a socket that can listen.
const NOT_A_LISTENER = new Set(['EINVAL', 'ENOTSOCK', 'EOPNOTSUPP', 'EBADF', 'ERR_INVALID_FD_TYPE']);

/**
 * Makes `server` listen. Under the master (or systemd socket activation) it adopts the
 * inherited socket named `name` (default: the first); standalone it binds `port`/`host`/
 * `path` (default: env PORT, else 3000). Also instruments the server for {@link shutdown}
 * and, unless `signals: false`, drains it on SIGTERM/SIGINT.
 *
 * @example
 * const server = http.createServer(app);
 * const { inherited, address } = await listen(server, 'http');
 * ready();
 */
export function listen(server: AnyServer, nameOrOptions?: string | ListenOptions): Promise<ListenResult> {
  return listenAs('listen()', server, nameOrOptions).then((result) => {
    // Until ready(), the master sees a worker that says nothing: say what it waits for.
    if (result.inherited) awaitingReady(result.name, result.fd);
    return result;
  });
}

/**
 * {@link listen} for `where` (`listen()`, or `serve()` which calls it): its errors name the
 * function the application called.
 *
 * @example
 * await listenAs('serve()', server, { port: 8080 });
 */
export async function listenAs(where: string, server: AnyServer, nameOrOptions?: string | ListenOptions): Promise<ListenResult> {
  checkServer(where, server, appFix('listen', server, 'listen(http.createServer(handler))'));
  const options = resolveListenOptions(where, nameOrOptions);
  const inherited = inheritedFds();
  let target: { fd: number; name: string } | undefined;
  if (inherited.length > 0) {
    target = options.name === undefined ? inherited[0] : inherited.find((f) => f.name === options.name);
    if (target === undefined) {
      const names = inherited.map((f) => f.name);
      throw new HitlessError(
        'ERR_LISTEN_NAME_UNKNOWN',
        `hitless ${where}: no inherited socket is named "${options.name}"; the master passed: ${names.join(', ')}. ` +
          'Use one of these names or add the socket to the config.',
        { details: { name: options.name, names } },
      );
    }
    checkSocket(where, target.fd, target.name);
  }
  const listenOptions: Bind =
    target !== undefined
      ? { fd: target.fd }
      : options.path !== undefined
        ? { path: options.path, backlog: options.backlog }
        : { port: options.port ?? envPort(where), host: options.host, backlog: options.backlog };
  if (target !== undefined) {
    if (!claimFd(target.fd)) {
      const why = claimOf(target.fd) === 'relay'
        ? ' (serve() without a name serves every socket no listen() claimed when it announced readiness); ' +
          `call listen(server, '${target.name}') before that, right after \`await serve()\` at the latest, or give serve() its own: serve(app, { name: '${inherited[0]?.name ?? 'http'}' })`
        : '';
      throw new HitlessError('ERR_LISTEN_FAILED', `hitless ${where}: the inherited socket "${target.name}" (fd ${target.fd}) was already adopted by another server${why}`, {
        details: { fd: target.fd, name: target.name },
      });
    }
  }

  instrument(server);
  const unregister = register(server, options.shutdown, options.signals, options.shutdownDelay, target?.name);
  try {
    openChannel(); // the lifeline works from the start; a bad fd surfaces in ready()
  } catch {
    // ready() reports ERR_READY_FD to the caller.
  }
  openIpc(); // the master's channel, when there is one (HITLESS_CHANNEL=1)

  try {
    await listenOnce(server, listenOptions);
  } catch (err) {
    // Back to the registration before this call: a server that already listens (a second
    // listen() fails with "called more than once") keeps its graceful stop.
    unregister();
    if (target !== undefined) releaseFd(target.fd);
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (target !== undefined && NOT_A_LISTENER.has(code)) {
      throw new HitlessError('ERR_LISTEN_FD_NOT_SOCKET', `hitless ${where}: inherited fd ${target.fd} ("${target.name}") is not a listening socket (${code}); unset LISTEN_FDS, or start the app under \`hitless start\``, {
        cause: err,
        details: { fd: target.fd, name: target.name },
      });
    }
    const on = target !== undefined ? `inherited fd ${target.fd} ("${target.name}")` : describe(listenOptions as net.ListenOptions);
    throw new HitlessError('ERR_LISTEN_FAILED', `hitless ${where}: could not listen on ${on}: ${(err as Error).message}`, {
      cause: err,
      details: { ...listenOptions },
    });
  }
  const result: ListenResult = { inherited: target !== undefined, address: server.address() };
  if (target !== undefined) {
    result.fd = target.fd;
    result.name = target.name;
  }
  return result;
}

function checkSocket(where: string, fd: number, name: string): void {
  let isSocket = false;
  let cause: unknown;
  try {
    isSocket = fstatSync(fd).isSocket();
  } catch (err) {
    cause = err;
  }
  if (!isSocket) {
    throw new HitlessError('ERR_LISTEN_FD_NOT_SOCKET', `hitless ${where}: inherited fd ${fd} ("${name}") is ${cause ? 'not open' : 'not a socket'}; check LISTEN_FDS and the order of the sockets passed (or unset LISTEN_FDS, or start the app under \`hitless start\`)`, {
      cause,
      details: { fd, name },
    });
  }
}

function envPort(where: string): number {
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return DEFAULT_PORT;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) invalid(where, 'env PORT', raw, 'an integer from 0 to 65535', 'PORT=8080');
  return port;
}

function describe(options: net.ListenOptions): string {
  if (options.path !== undefined) return options.path;
  return `${options.host ?? '(any host)'}:${options.port}`;
}

function listenOnce(server: AnyServer, options: Bind): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.removeListener('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.removeListener('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      server.listen(options as net.ListenOptions);
    } catch (err) {
      server.removeListener('error', onError);
      server.removeListener('listening', onListening);
      reject(err);
    }
  });
}
