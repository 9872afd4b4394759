/**
 * The worker side of the master's IPC channel: the transport of the worker channel
 * protocol (protocol.ts holds the messages and the one parser; docs/API.md "Connection
 * hand-over"). The master spawns Node workers with an 'ipc' stdio entry and env
 * HITLESS_CHANNEL=1; only then is `process.send` the master's, and not some other parent's
 * (PM2, a test runner). What the master sends is parsed by {@link parseMessage}; anything
 * else is ignored, and so are unknown types.
 *
 * The channel is never the lifeline: the readiness socket is (ready.ts). It is unref()ed so
 * it never keeps the process alive, and its 'disconnect' only ends hand-overs in progress.
 */
import type * as net from 'node:net';
import { CHANNEL_ENV, closeHandle, parseMessage, PROTOCOL, type Body, type MasterMessage, type WorkerMessage } from './protocol.js';

/** Called with a message of one type from the master and the handle it carried, if any. */
export type MessageHandler<M extends MasterMessage = MasterMessage> = (message: M, handle: unknown) => void;

/** Called when a send finished: `null` once written to the channel, else why it failed. */
export type SendCallback = (error: Error | null) => void;

const handlers = new Map<MasterMessage['type'], MessageHandler>();
const disconnectListeners = new Set<() => void>();
let enabled: boolean | undefined;
let opened = false;
/** The handle send waiting for the master's acknowledgement (one at a time). */
let awaitingAck: ((received: boolean) => void) | undefined;
let ackWatch: NodeJS.Timeout | undefined;

/**
 * How often a pending acknowledgement checks that the channel still exists. When the channel
 * ends while a handle is unacknowledged, Node closes it but never emits 'disconnect' (it waits
 * for the acknowledgement first), so nothing else would tell.
 */
const ACK_WATCH_MS = 100;

/**
 * True when the hitless master's channel is present: env HITLESS_CHANNEL=1 and an IPC
 * channel. Read once; the variable is then unset, so programs this process forks (which may
 * get an IPC channel of their own) do not take their parent for the master.
 */
export function channelEnabled(): boolean {
  if (enabled === undefined) {
    enabled = process.env[CHANNEL_ENV] === String(PROTOCOL) && typeof process.send === 'function';
    delete process.env[CHANNEL_ENV];
  }
  return enabled;
}

/** Handles messages of `type` from the master (one handler per type). */
export function onChannelMessage<T extends MasterMessage['type']>(type: T, handler: MessageHandler<Extract<MasterMessage, { type: T }>>): void {
  handlers.set(type, handler as MessageHandler);
}

/** Calls `fn` when the channel closes (the master died or disconnected). */
export function onChannelDisconnect(fn: () => void): () => void {
  disconnectListeners.add(fn);
  return () => disconnectListeners.delete(fn);
}

/** True while messages can be sent to the master. */
export function channelConnected(): boolean {
  return channelEnabled() && process.connected === true;
}

/** Starts receiving (idempotent). Returns false when there is no master channel. */
export function openIpc(): boolean {
  if (!channelEnabled()) return false;
  if (opened) return true;
  opened = true;
  process.on('message', dispatch);
  // Node's own acknowledgement of each handle (lib/internal/child_process.js): the receiving
  // side's Node sends NODE_HANDLE_ACK as soon as the fd arrived, before any code there runs,
  // or NODE_HANDLE_NACK when it could not take the fd (MSG_CTRUNC: out of descriptors).
  (process as NodeJS.EventEmitter).on('internalMessage', (message: { cmd?: unknown } | null) => {
    if (message?.cmd === 'NODE_HANDLE_ACK') settleAck(true);
    else if (message?.cmd === 'NODE_HANDLE_NACK') settleAck(false);
  });
  process.on('disconnect', () => {
    // An acknowledgement read before the end of the channel was delivered before this.
    settleAck(false);
    for (const fn of [...disconnectListeners]) fn();
  });
  // After the listeners: adding a 'message' listener refs the channel unless unref() was
  // called explicitly, and the worker's life must not depend on it.
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
  return true;
}

function dispatch(raw: unknown, handle: unknown): void {
  const message = parseMessage(raw, 'master');
  const known = message && handlers.get(message.type);
  if (message !== undefined && known !== undefined) return known(message, handle);
  // A handle nobody takes would stay open in this process for its whole life; one that came
  // with a message of another protocol is left to whoever speaks that one.
  if (handle !== undefined && handle !== null && (raw as { hitless?: unknown } | null)?.hitless === PROTOCOL) closeHandle(handle);
}

function settleAck(received: boolean): void {
  const settle = awaitingAck;
  awaitingAck = undefined;
  settle?.(received);
}

/** Handle sends waiting for the one in flight to be acknowledged (Node's IPC sends one handle at a time). */
const handleQueue: Array<() => void> = [];

/**
 * Sends a message with a raw TCP handle (Node's 'net.Native': the master gets the handle, not
 * a reading net.Socket) and calls `done(true)` once the master's Node acknowledged the fd,
 * `done(false)` when it did not get it (write failed, NACK, or the channel closed first).
 * Only an acknowledgement proves the master holds the fd: a failed write to a dead channel
 * still completes its callback without an error. One handle at a time: a send while another
 * waits for its acknowledgement waits its turn (the HTTP and the WebSocket hand-over share
 * the channel).
 */
export function sendHandle(message: Body<WorkerMessage>, handle: unknown, done: (received: boolean) => void): void {
  if (awaitingAck !== undefined) {
    handleQueue.push(() => sendHandle(message, handle, done));
    return;
  }
  if (!channelConnected()) {
    process.nextTick(done, false);
    process.nextTick(nextHandle);
    return;
  }
  awaitingAck = (received) => {
    done(received);
    nextHandle();
  };
  const mine = awaitingAck;
  ackWatch ??= setInterval(() => {
    // No acknowledgement before the end of the channel: the master never took the fd (its
    // Node acknowledges a handle before any code there sees it).
    if (awaitingAck !== undefined && process.connected !== true) settleAck(false);
    if (awaitingAck === undefined) {
      clearInterval(ackWatch);
      ackWatch = undefined;
    }
  }, ACK_WATCH_MS).unref();
  send(message, handle, (err) => {
    if (err !== null && awaitingAck === mine) settleAck(false);
  });
}

function nextHandle(): void {
  if (awaitingAck === undefined) handleQueue.shift()?.();
}

/**
 * Sends `message` with the protocol version to the master. `callback` runs once the message
 * was written (or with the error), except when the channel dies while the send is queued
 * behind an unacknowledged handle: Node keeps such sends forever.
 */
export function send(message: Body<WorkerMessage>, handle?: unknown, callback?: SendCallback): void {
  const done = callback ?? (() => {});
  if (!openIpc() || process.connected !== true || process.send === undefined) {
    process.nextTick(done, new Error('the master channel is closed'));
    return;
  }
  try {
    // With a callback, a failed write reaches the callback instead of an 'error' event
    // (which, unhandled, would end the process). Node's types know no raw handles.
    process.send({ hitless: PROTOCOL, ...message }, handle as net.Server | undefined, {}, (err: Error | null) => done(err ?? null));
  } catch (err) {
    process.nextTick(done, err as Error);
  }
}
