/**
 * When a response is over for the library's bookkeeping: its 'close', or its socket's
 * 'close' when that comes first. On Node 20 and 22 a response queued behind another
 * (pipelining) fires neither 'finish' nor 'close' when the client goes away, and without
 * the socket's it stayed open for good (a drain waited its whole timeout for it). One
 * 'close' listener per socket ends all of its responses, so pipelined requests add none.
 */
import type { EventEmitter } from 'node:events';

const openBySocket = new WeakMap<EventEmitter, Set<() => void>>();

function openOn(socket: EventEmitter): Set<() => void> {
  let open = openBySocket.get(socket);
  if (open === undefined) {
    const ends = new Set<() => void>();
    openBySocket.set(socket, ends);
    socket.once('close', () => {
      for (const end of [...ends]) end();
    });
    open = ends;
  }
  return open;
}

/**
 * Calls `end` once, when `res` closes or its `socket` does (internal).
 *
 * @example
 * whenResponseCloses(req.socket, res, () => busy--);
 */
export function whenResponseCloses(socket: EventEmitter | undefined, res: { once(e: 'close', fn: () => void): unknown }, end: () => void): void {
  const pending = socket === undefined ? undefined : openOn(socket);
  let open = true;
  const ended = (): void => {
    if (!open) return;
    open = false;
    pending?.delete(ended);
    end();
  };
  res.once('close', ended);
  pending?.add(ended);
}
