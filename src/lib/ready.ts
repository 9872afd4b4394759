/**
 * The channel to the master: HITLESS_READY_FD, a socketpair end the master passed as a
 * 'pipe' stdio entry. Lines use sd_notify syntax ("READY=1", "STATUS=..."). The same
 * socket is the lifeline: when the master dies or closes it, the process stops gracefully,
 * so a worker never outlives its master. Node workers with the master's IPC channel also
 * say `hello` there (channel.ts), right before READY=1.
 */
import { fstatSync } from 'node:fs';
import * as module from 'node:module';
import * as net from 'node:net';
import { HitlessError } from '../errors.js';
import { channelEnabled, openIpc, send } from './channel.js';
import { ADOPTED_NOT_READY, NOTIFY_READY, NOTIFY_STATUS } from './protocol.js';
import { invalid } from './options.js';
import { adoptedListeners, handoverListeners, stopIsHandled } from './registry.js';
import { relayUnclaimed } from './relay.js';
import { foreignListenPid } from './fds.js';

let channel: net.Socket | undefined;
let readySent = false;
// Set by lifecycle.ts (which imports this module, so the call cannot go the other way).
let lifelineLost: () => void = () => {};
let lost = false;

/** Sets what runs when the master's end of the readiness socket closes (internal). */
export function whenLifelineLost(fn: () => void): void {
  lifelineLost = fn;
}

/** Whether the master's end of the readiness socket has closed (internal). */
export function lifelineClosed(): boolean {
  return lost;
}

/**
 * The library in a child of the worker command (the app under `npm start`, `npx`, the `tsx`
 * CLI): the master's sockets and readiness fd belong to the worker, not to this process.
 */
function inChild(owner: number): HitlessError {
  return new HitlessError('ERR_LISTEN_IN_CHILD',
    `this process (pid ${process.pid}) is not the worker the master started (pid ${owner}), which runs the app in a child process, ` +
      'as `npm start`, `npx`, `yarn` and the `tsx` command do; give hitless the app\'s own command instead, such as ' +
      '`node server.js` or `node --import tsx server.ts`',
    { details: { pid: process.pid, worker: owner } });
}

function readyFd(): number | undefined {
  const raw = process.env.HITLESS_READY_FD;
  if (raw === undefined || raw === '') return undefined;
  const fail = (why: string, cause?: unknown): never => {
    throw new HitlessError('ERR_READY_FD', `HITLESS_READY_FD=${raw} ${why}; start the process under the hitless master or unset it`, {
      cause,
      details: { fd: raw },
    });
  };
  if (!/^\d+$/.test(raw)) return fail('is not a file descriptor number');
  const fd = Number(raw);
  try {
    fstatSync(fd);
  } catch (err) {
    return fail('is not an open file descriptor', err);
  }
  return fd;
}

function isPipe(fd: number): boolean {
  try {
    return fstatSync(fd).isFIFO();
  } catch {
    return false;
  }
}

/**
 * Opens the channel once (internal; listen() calls it so the lifeline works from the start).
 * Returns undefined standalone. Throws ERR_READY_FD when the variable names no usable fd.
 */
export function openChannel(): net.Socket | undefined {
  if (channel !== undefined) return channel;
  if (process.env.HITLESS_READY_FD && foreignListenPid() !== undefined) throw inChild(foreignListenPid()!);
  const fd = readyFd();
  if (fd === undefined) return undefined;
  // A pipe's write end (a supervisor of its own passing one) cannot be read: reading it
  // fails at once, which would look like the master going away. It is only written to, and
  // its reader's end shows as an EPIPE at the next write.
  const pipe = isPipe(fd);
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd, readable: !pipe, writable: true });
  } catch (err) {
    throw new HitlessError('ERR_READY_FD', `HITLESS_READY_FD=${fd} is not a socket or pipe: ${(err as Error).message}`, { cause: err });
  }
  // The channel must never keep the process alive by itself.
  socket.unref();
  // A write to a dead master fails with EPIPE; 'close' below handles it.
  socket.on('error', () => {});
  if (!pipe) socket.on('data', () => {}); // nothing is expected; read so the peer's close is seen
  socket.once('close', () => {
    lost = true;
    lifelineLost();
  });
  channel = socket;
  return socket;
}

/**
 * Tells the master this process serves: writes "READY=1\n" to HITLESS_READY_FD, once.
 * With the master's IPC channel (env HITLESS_CHANNEL=1) it first sends `hello`, saying which
 * inherited sockets this process accepts on and which can receive handed-over connections
 * (the servers registered so far: call it after listen()); a socket no server accepts on
 * makes the master refuse this generation. Sockets nobody claimed are served first by
 * serve() without a name, if the app used it. Standalone (variables unset) it does nothing.
 * Throws ERR_READY_FD for a bad fd.
 *
 * @example
 * await listen(server);
 * ready();
 */
export function ready(): void {
  const socket = openChannel();
  if (readySent || (socket === undefined && !channelEnabled())) return;
  readySent = true;
  // serve() without a name serves every inherited socket nobody claimed: from now on.
  relayUnclaimed();
  if (openIpc() && stopIsHandled()) {
    const listeners = handoverListeners();
    // Written before READY=1, so a master reading both sees hello first. `adopted` lets the
    // master refuse a generation that leaves one of its sockets unserved; `moves`: it can also
    // hand a part of its connections to a canary while it serves (move.ts).
    send({ type: 'hello', pid: process.pid, handover: listeners.length > 0, listeners, adopted: adoptedListeners(), moves: listeners.length > 0 });
  }
  socket?.write(`${NOTIFY_READY}\n`);
  flushCompileCache();
}

/**
 * Node (>= 22.10) with its compile cache on (NODE_COMPILE_CACHE, which the master sets)
 * writes what it compiled when the process exits; a reload's next generation starts while
 * this one still serves, so it would boot from the cache of the generation before. Writing
 * it at READY lets every generation after the first boot from the one before it.
 */
function flushCompileCache(): void {
  try {
    (module as { flushCompileCache?: () => void }).flushCompileCache?.();
  } catch {
    // A cache that cannot be written costs the next boot some CPU, nothing else.
  }
}

/**
 * After listen() adopted an inherited socket, before ready(): a STATUS line saying so, which
 * the master shows while it waits and names in a ready-timeout (the app forgot ready()).
 */
export function awaitingReady(name: string | undefined, fd: number | undefined): void {
  if (readySent) return;
  try {
    status(`${ADOPTED_NOT_READY} (listener "${name ?? '?'}", fd ${String(fd)}): call ready() once it serves`);
  } catch {
    // A bad readiness fd is ready()'s to report.
  }
}

/**
 * Sends a one-line status text the master shows in `hitless status` ("STATUS=<text>\n").
 * Line breaks are replaced by spaces. Standalone it does nothing.
 *
 * @example
 * status('warming cache 40%');
 */
export function status(text: string): void {
  if (typeof text !== 'string') invalid('status()', 'text', text, 'a string', "status('warming cache')");
  const socket = openChannel();
  if (socket === undefined) return;
  socket.write(`${NOTIFY_STATUS}${text.replace(/[\r\n]+/g, ' ')}\n`);
}
