/**
 * The worker side of the master's IPC channel (worker channel v1, docs/API.md "Connection
 * hand-over"). The master spawns Node workers with an 'ipc' stdio entry and env
 * HITLESS_CHANNEL=1; only then is `process.send` the master's, and not some other parent's
 * (PM2, a test runner). Messages are JSON objects with `hitless: 1` and a `type`; anything
 * else is ignored, and so are unknown types.
 *
 * The channel is never the lifeline: the readiness socket is (ready.ts). It is unref()ed so
 * it never keeps the process alive, and its 'disconnect' only ends hand-overs in progress.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';

/** A channel message (worker channel v1). */
export interface ChannelMessage {
  hitless: 1;
  type: string;
  [key: string]: unknown;
}

/** Called with a message of one type and the handle it carried, if any. */
export type MessageHandler = (message: ChannelMessage, handle: unknown) => void;

/** Called when a send finished: `null` once written to the channel, else why it failed. */
export type SendCallback = (error: Error | null) => void;

const handlers = new Map<string, MessageHandler>();
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
    enabled = process.env.HITLESS_CHANNEL === '1' && typeof process.send === 'function';
    delete process.env.HITLESS_CHANNEL;
  }
  return enabled;
}

/** Handles messages of `type` from the master (one handler per type). */
export function onChannelMessage(type: string, handler: MessageHandler): void {
  handlers.set(type, handler);
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

function dispatch(message: unknown, handle: unknown): void {
  const known =
    message !== null && typeof message === 'object' && (message as ChannelMessage).hitless === 1
      ? handlers.get(String((message as ChannelMessage).type))
      : undefined;
  if (known !== undefined) return known(message as ChannelMessage, handle);
  // A handle nobody takes would stay open in this process for its whole life.
  if (handle !== undefined && handle !== null && (message as ChannelMessage | null)?.hitless === 1) closeHandle(handle);
}

/** Closes a raw handle (or a net object) received over the channel that will not be used. */
export function closeHandle(handle: unknown): void {
  const target = handle as { close?: () => void; destroy?: () => void };
  try {
    if (typeof target.destroy === 'function') target.destroy();
    else target.close?.();
  } catch {
    // Already closed.
  }
}

function settleAck(received: boolean): void {
  const settle = awaitingAck;
  awaitingAck = undefined;
  settle?.(received);
}

/**
 * Sends a message with a raw TCP handle (Node's 'net.Native': the master gets the handle, not
 * a reading net.Socket) and calls `done(true)` once the master's Node acknowledged the fd,
 * `done(false)` when it did not get it (write failed, NACK, or the channel closed first).
 * Only an acknowledgement proves the master holds the fd: a failed write to a dead channel
 * still completes its callback without an error. One handle at a time.
 */
export function sendHandle(message: { type: string; [key: string]: unknown }, handle: unknown, done: (received: boolean) => void): void {
  assert.equal(awaitingAck, undefined, 'sendHandle(): the previous handle is not acknowledged yet');
  if (!channelConnected()) {
    process.nextTick(done, false);
    return;
  }
  awaitingAck = done;
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
    if (err !== null && awaitingAck === done) settleAck(false);
  });
}

/**
 * Sends `{ hitless: 1, ...message }` to the master. `callback` runs once the message was
 * written (or with the error), except when the channel dies while the send is queued behind
 * an unacknowledged handle: Node keeps such sends forever.
 */
export function send(message: { type: string; [key: string]: unknown }, handle?: unknown, callback?: SendCallback): void {
  const done = callback ?? (() => {});
  if (!openIpc() || process.connected !== true || process.send === undefined) {
    process.nextTick(done, new Error('the master channel is closed'));
    return;
  }
  try {
    // With a callback, a failed write reaches the callback instead of an 'error' event
    // (which, unhandled, would end the process). Node's types know no raw handles.
    process.send({ hitless: 1, ...message }, handle as net.Server | undefined, {}, (err: Error | null) => done(err ?? null));
  } catch (err) {
    process.nextTick(done, err as Error);
  }
}
