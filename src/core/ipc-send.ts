/**
 * Sending over a child's Node IPC channel, the carrier of the worker channel (process.ts)
 * and of the link to a new master in an upgrade (src/master/peer.ts). A message without a
 * handle goes at once; handles go one at a time and count as delivered only on the
 * receiver's acknowledgement (NODE_HANDLE_ACK, sent by its Node before any of its code sees
 * the fd): Node's write callback reports success even for a write that failed, and never
 * calls back a send queued behind an unacknowledged handle when the receiver dies. Until
 * the ACK the descriptor is still the sender's to give elsewhere.
 */
import type { ChildProcess } from 'node:child_process';

interface PendingHandle {
  message: object;
  handle: unknown;
  resolve: (delivered: boolean) => void;
}

export class IpcSender {
  readonly #child: ChildProcess;
  readonly #handles: PendingHandle[] = [];
  #inFlight: PendingHandle | undefined;
  #closed = false;

  /**
   * @example
   * const sender = new IpcSender(child);
   * child.once('exit', () => sender.close());
   * await sender.send({ hitless: 1, type: 'conn' }, handle); // true once the child has the fd
   */
  constructor(child: ChildProcess) {
    this.#child = child;
    child.on('internalMessage', (m: { cmd?: string } | null) => {
      if (m?.cmd === 'NODE_HANDLE_ACK') this.#settle(true);
      else if (m?.cmd === 'NODE_HANDLE_NACK') this.#settle(false);
    });
  }

  /** Sends `message` (with `handle`, if given); resolves true once the child has it. */
  send(message: object, handle?: unknown): Promise<boolean> {
    if (handle !== undefined) {
      return new Promise((resolve) => {
        this.#handles.push({ message, handle, resolve });
        this.#pump();
      });
    }
    const child = this.#child;
    if (this.#closed || !child.connected) return Promise.resolve(false);
    return new Promise((resolve) => {
      try {
        child.send(message, (err) => resolve(err == null));
      } catch {
        resolve(false);
      }
    });
  }

  /** The child exited: handles not acknowledged fail (they are still ours), and so does every later send. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#settle(false);
    for (const item of this.#handles.splice(0)) item.resolve(false);
  }

  #pump(): void {
    const child = this.#child;
    while (this.#inFlight === undefined && this.#handles.length > 0) {
      const item = this.#handles.shift() as PendingHandle;
      if (this.#closed || !child.connected) {
        item.resolve(false);
        continue;
      }
      this.#inFlight = item;
      try {
        child.send(item.message, item.handle as never, (err) => {
          if (err != null && this.#inFlight === item) this.#settle(false);
        });
      } catch {
        this.#settle(false);
      }
    }
  }

  #settle(ok: boolean): void {
    const item = this.#inFlight;
    this.#inFlight = undefined;
    item?.resolve(ok);
    this.#pump();
  }
}
