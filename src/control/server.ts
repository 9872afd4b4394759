/**
 * The master's control server: a unix socket in the private run dir that `hitless
 * reload|status|stop|scale` talk to (protocol in protocol.ts, beside it). It only translates
 * requests into MasterHandle calls; a misbehaving client gets an error reply and never
 * disturbs the master or other clients.
 */
import { chmodSync, existsSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { HitlessError, isHitlessError } from '../errors.js';
import { controlSocketPath, ensureRunDir } from '../config/rundir.js';
import {
  CONTROL_COMMANDS, encode, MAX_LINE_BYTES, PROTOCOL_VERSION,
  type ControlCommand, type ControlMessage,
} from './protocol.js';
import { LineSplitter } from '../core/lines.js';
import type { Logger } from '../core/logger.js';
import type { MasterEvent, MasterHandle, ReloadOptions, UpgradeOptions } from '../core/types.js';
import { STRATEGY_NAMES } from '../config/defaults.js';
import { workerCount } from '../config/workers.js';
import type { StrategyName } from '../config/types.js';

export interface ControlServerOptions {
  /** Private folder of the socket (created 0700 if missing; refused if others can write to it). */
  runDir: string;
  handle: MasterHandle;
  logger: Logger;
  /**
   * Listen at this path instead of `<runDir>/control.sock`, until {@link ControlServer.claim}
   * moves the socket there: a new master started by an upgrade, while the old one still
   * answers at control.sock.
   */
  stagingPath?: string;
  /**
   * How long a new connection may take to send its first whole request line before it is
   * answered with an error and closed (default {@link FIRST_REQUEST_TIMEOUT_MS}): a client
   * that connects and never speaks must not hold a descriptor of the master for good.
   */
  firstRequestTimeoutMs?: number;
}

/** Default of {@link ControlServerOptions.firstRequestTimeoutMs}. */
export const FIRST_REQUEST_TIMEOUT_MS = 10_000;

export interface ControlServer {
  /** Absolute path of the socket (the staging path until claim()). */
  readonly path: string;
  /** Stops listening, drops open connections, removes the socket file. */
  close(): Promise<void>;
  /**
   * Moves a staged socket over `<runDir>/control.sock` (rename(2): atomic, so a client
   * reaches the old master or this one, never nothing). Clients connect here from then on.
   */
  claim(): void;
  /**
   * Hands control.sock over to the master that claimed it: answers the requests under way,
   * then closes their connections, and never removes the file nor closes the listening
   * handle (libuv would unlink the path, which is the new master's socket now). The
   * listening socket ends with the process.
   */
  release(): Promise<void>;
  /**
   * The path is another master's from now on (an upgrade's point of no return): stop making
   * it again when it goes (a removed run dir), which would leave this master's socket file
   * behind at its exit, where the new master's belongs.
   */
  disown(): void;
}

/** Resolves true when something accepts a connection at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolvePromise(true);
    });
    probe.once('error', () => resolvePromise(false));
  });
}

/** Removes a stale socket left by a master that died; refuses a live one or a non-socket. */
async function claimPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) {
    throw new HitlessError('ERR_CONFIG_INVALID', `runDir: ${path} exists and is not a socket; remove it or pass another --run-dir`);
  }
  if (await answers(path)) {
    throw new HitlessError('ERR_MASTER_RUNNING',
      `a master is already running for this app (control socket ${path}); use \`hitless reload\` or \`hitless stop\``);
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
}

/** How often the master looks whether its control socket file is still there (ms). */
export const CONTROL_CHECK_MS = 2000;

/** How long release() waits for a client to take its last reply before dropping the connection. */
const RELEASE_FLUSH_MS = 2000;
/** How long a stopping master's close() lets a connection flush a queued line before destroying it (ms). */
const CLOSE_FLUSH_MS = 200;

/** The upgrade command's options: `exec`, the hitless to run instead of the one the master was started from. */
function upgradeOptions(args: Record<string, unknown>): UpgradeOptions {
  const { exec, reason } = args;
  if (exec !== undefined && (typeof exec !== 'string' || exec === '')) {
    throw new HitlessError('ERR_CONTROL_PROTOCOL', `upgrade: "exec" must be a path, not ${JSON.stringify(exec)}`);
  }
  return { ...(exec ? { exec } : {}), reason: typeof reason === 'string' && reason ? reason : 'hitless upgrade' };
}

/** The reload command's options: `strategy` for this reload only ("canary" for `hitless reload --canary`). */
/**
 * A request's `args`: an object, or none (absent or null, as a client's empty map may encode
 * it). Anything else is a malformed request, answered and not run (`"args":"zzz"` once
 * started a real reload with no arguments).
 */
function requestArgs(args: unknown): Record<string, unknown> {
  if (args === undefined || args === null) return {};
  if (typeof args === 'object' && !Array.isArray(args)) return args as Record<string, unknown>;
  const shown = JSON.stringify(args);
  throw new HitlessError('ERR_CONTROL_PROTOCOL',
    `"args" must be a JSON object, like {"reason": "deploy 42"}, not ${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}; leave it out when there is nothing to pass`);
}

function reloadOptions(args: Record<string, unknown>): ReloadOptions {
  const { strategy } = args;
  if (strategy === undefined) return {};
  if (typeof strategy !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(strategy)) {
    throw new HitlessError('ERR_CONTROL_PROTOCOL', `reload: unknown strategy ${JSON.stringify(strategy)}; known: ${STRATEGY_NAMES.join(', ')}`);
  }
  return { strategy: strategy as StrategyName };
}

function errorReply(id: number | null, err: unknown): ControlMessage {
  const code = isHitlessError(err) ? err.code : 'ERR_CONTROL_PROTOCOL';
  const message = err instanceof Error ? err.message : String(err);
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code, message } };
}

/**
 * Starts the control server on `<runDir>/control.sock` (mode 0600).
 *
 * @throws HitlessError ERR_MASTER_RUNNING when another master answers on that socket.
 * @example
 * const control = await startControlServer({ runDir: config.runDir, handle, logger });
 * // … later, when the master stops:
 * await control.close();
 */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { runDir, handle, logger, firstRequestTimeoutMs = FIRST_REQUEST_TIMEOUT_MS } = options;
  ensureRunDir(runDir);
  const finalPath = controlSocketPath(runDir);
  let path = options.stagingPath ?? finalPath;
  await claimPath(path);
  const connections = new Set<Socket>();
  /** Requests being answered: release() lets them finish. */
  const inFlight = new Set<Promise<void>>();
  const unsubscribes = new Set<() => void>();

  const server = createServer((socket) => {
    connections.add(socket);
    // A client that vanishes mid-reply (ECONNRESET, EPIPE) is its own problem, not the master's.
    socket.on('error', (err) => logger.log('debug', 'control client error', { error: err.message }));
    socket.on('close', () => connections.delete(socket));
    const send = (message: ControlMessage): void => {
      if (!socket.destroyed && socket.writable) socket.write(encode(message));
    };
    // Only the first request is timed, from the connect (not an idle timer: a client
    // trickling bytes without a newline is held no longer): once a client has spoken, a
    // connection may wait between requests (several may be sent on one) and a reload may
    // stream for minutes.
    const firstLine = setTimeout(() => {
      send(errorReply(null, new HitlessError('ERR_CONTROL_PROTOCOL',
        `no request line within ${firstRequestTimeoutMs} ms of connecting; connection closed (send one JSON object per line, ending with a newline)`)));
      socket.end();
    }, firstRequestTimeoutMs);
    firstLine.unref();
    socket.once('close', () => clearTimeout(firstLine));
    const splitter = new LineSplitter({
      maxBytes: MAX_LINE_BYTES,
      onLine: (line) => {
        if (line.trim() === '') return;
        clearTimeout(firstLine);
        const p = onLine(line, send, socket).finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
      onOverflow: () => {
        send(errorReply(null, new HitlessError('ERR_CONTROL_PROTOCOL', `request line longer than ${MAX_LINE_BYTES} bytes; connection closed`)));
        socket.end();
      },
    });
    socket.on('data', (chunk) => splitter.push(chunk));
  });

  /** Passes the master's events to `onEvent` until `socket` closes, the server closes, or the returned function is called. */
  function subscribe(socket: Socket, onEvent: (event: MasterEvent) => void): () => void {
    handle.on('event', onEvent);
    const unsubscribe = (): void => {
      handle.off('event', onEvent);
      unsubscribes.delete(unsubscribe);
    };
    unsubscribes.add(unsubscribe);
    socket.once('close', unsubscribe);
    return unsubscribe;
  }

  /** Runs `work`, streaming the master's events (not worker output) to this request meanwhile. */
  async function streamingEvents<T>(id: number, socket: Socket, send: (m: ControlMessage) => void, work: () => Promise<T>): Promise<T> {
    const unsubscribe = subscribe(socket, (event) => {
      if (event.type !== 'worker-output') send({ v: PROTOCOL_VERSION, id, event });
    });
    try {
      return await work();
    } finally {
      unsubscribe();
    }
  }

  async function onLine(line: string, send: (m: ControlMessage) => void, socket: Socket): Promise<void> {
    let id: number | null = null;
    try {
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        throw new HitlessError('ERR_CONTROL_PROTOCOL', 'request is not JSON; send one JSON object per line');
      }
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
        throw new HitlessError('ERR_CONTROL_PROTOCOL', 'request is not a JSON object');
      }
      const req = msg as Record<string, unknown>;
      if (typeof req.id === 'number' && Number.isSafeInteger(req.id)) id = req.id;
      if (req.v !== PROTOCOL_VERSION) {
        throw new HitlessError('ERR_CONTROL_PROTOCOL', `unsupported protocol version ${JSON.stringify(req.v)}; this master speaks v${PROTOCOL_VERSION} (is the CLI from another hitless version?)`);
      }
      if (id === null) throw new HitlessError('ERR_CONTROL_PROTOCOL', 'request has no integer "id"');
      if (!CONTROL_COMMANDS.includes(req.cmd as ControlCommand)) {
        throw new HitlessError('ERR_CONTROL_UNKNOWN_COMMAND', `unknown command ${JSON.stringify(req.cmd)}; known: ${CONTROL_COMMANDS.join(', ')}`);
      }
      const args = requestArgs(req.args);
      const reqId = id;
      const cmd = req.cmd as ControlCommand;
      switch (cmd) {
        case 'status':
          return send({ v: PROTOCOL_VERSION, id, ok: true, result: handle.status() });
        case 'reload': {
          const reason = typeof args.reason === 'string' && args.reason ? args.reason : 'hitless reload';
          // Only this request's own reload's events (ReloadOptions.follow), not the whole
          // stream: the next reload starts before this one's reply goes out, and an earlier
          // one's old generation may end its drain meanwhile (h10 F1).
          const follow = (event: MasterEvent): void => send({ v: PROTOCOL_VERSION, id: reqId, event });
          const outcome = await handle.reload(reason, { ...reloadOptions(args), follow });
          return send({ v: PROTOCOL_VERSION, id, ok: true, result: outcome });
        }
        case 'scale': {
          const workers = workerCount(args.workers, 'scale');
          if (!handle.scale) throw new HitlessError('ERR_CONTROL_UNKNOWN_COMMAND', 'this master cannot scale');
          const scale = handle.scale.bind(handle);
          const outcome = await streamingEvents(reqId, socket, send, () => scale(workers));
          return send({ v: PROTOCOL_VERSION, id, ok: true, result: outcome });
        }
        case 'upgrade': {
          if (!handle.upgrade) throw new HitlessError('ERR_CONTROL_UNKNOWN_COMMAND', 'this master cannot upgrade itself');
          const upgrade = handle.upgrade.bind(handle);
          const opts = upgradeOptions(args);
          const outcome = await streamingEvents(reqId, socket, send, () => upgrade(opts));
          return send({ v: PROTOCOL_VERSION, id, ok: true, result: outcome });
        }
        case 'stop': {
          const force = args.force === true;
          // What the stop waits for besides the serving workers: generations still draining
          // in the background (a forced stop kills them too).
          const { pid, draining = [] } = handle.status();
          // `follow`: the stop's own end (`master-stop`, with the count killed at
          // drainTimeout) goes to this connection too, before the master closes it.
          if (args.follow === true) {
            subscribe(socket, (event) => {
              if (event.type === 'master-stop') send({ v: PROTOCOL_VERSION, id: reqId, event });
            });
          }
          // Reply before stopping: the stop may end this process before a later write.
          socket.write(encode({ v: PROTOCOL_VERSION, id, ok: true, result: { stopping: true, pid, force, draining: force ? [] : draining } }), () => {
            handle.stop(force).catch((err: unknown) => logger.error('stop failed', { error: (err as Error).message }));
          });
          return;
        }
        default: {
          // Every command of CONTROL_COMMANDS has a case above: a new one fails to compile here.
          const unhandled: never = cmd;
          throw new HitlessError('ERR_CONTROL_UNKNOWN_COMMAND', `command ${JSON.stringify(unhandled)} has no handler`);
        }
      }
    } catch (err) {
      send(errorReply(id, err));
    }
  }

  await listen(server, path);
  chmodSync(path, 0o600);
  server.on('error', (err) => logger.error('control socket error', { error: err.message }));

  let closing: Promise<void> | undefined;
  // The socket file removed while the master runs (its run dir deleted: a /tmp cleaner, an
  // `rm -rf`): no command could reach the master any more, and `hitless start` took the
  // folder for free (h21 F2). Looked at every CONTROL_CHECK_MS and made again where it was.
  let rebinding = false;
  /** Since when the socket could not be made again (said once per outage). */
  let failingSince: number | undefined;
  const watch = setInterval(() => {
    if (closing !== undefined || rebinding || path !== finalPath || existsSync(path)) return;
    rebinding = true;
    void (async () => {
      try {
        ensureRunDir(runDir);
        server.close(); // the lost name's listener; connections open on it go on
        await listen(server, path);
        if (closing !== undefined) return void server.close(); // stopped meanwhile
        chmodSync(path, 0o600);
        const after = failingSince === undefined ? '' : ` after ${Math.round((Date.now() - failingSince) / 1000)} s`;
        failingSince = undefined;
        logger.warn(`control socket ${path} was removed (its run dir deleted?); made it again${after}`);
      } catch (err) {
        if (failingSince !== undefined) return; // said already; tried again every CONTROL_CHECK_MS
        failingSince = Date.now();
        logger.error(`control socket ${path} was removed and cannot be made again: ${(err as Error).message}; \`hitless\` commands cannot reach this master until it can (tried every ${CONTROL_CHECK_MS / 1000} s; signals still work: SIGHUP reloads, SIGTERM stops)`);
      } finally {
        rebinding = false;
      }
    })();
  }, CONTROL_CHECK_MS);
  watch.unref();
  const stopWatching = (): void => clearInterval(watch);
  return {
    get path() {
      return path;
    },
    claim() {
      if (path === finalPath) return;
      renameSync(path, finalPath);
      path = finalPath;
    },
    disown() {
      stopWatching();
    },
    async release() {
      stopWatching();
      closing ??= (async () => {
        server.unref();
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        for (const unsubscribe of [...unsubscribes]) unsubscribe();
        await Promise.all([...connections].map((socket) => new Promise<void>((resolvePromise) => {
          socket.once('close', () => resolvePromise());
          socket.end();
          // A client that never reads its reply must not hold this process.
          setTimeout(() => socket.destroy(), RELEASE_FLUSH_MS).unref();
        })));
      })();
      return closing;
    },
    close() {
      stopWatching();
      closing ??= new Promise<void>((resolvePromise) => {
        for (const unsubscribe of [...unsubscribes]) unsubscribe();
        server.close(() => resolvePromise());
        for (const socket of connections) {
          // A line still queued (a `stop` follower's `master-stop`) goes out first, briefly.
          if (socket.writableLength === 0) socket.destroy();
          else {
            socket.end();
            setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS).unref();
          }
        }
      }).then(() => {
        try {
          unlinkSync(path);
        } catch {
          // Node removes the socket file on close already; nothing else to do.
        }
      });
      return closing;
    },
  };
}
