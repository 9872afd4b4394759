/**
 * The master's broker for connection hand-over: an old worker sends each keep-alive
 * connection (a raw socket handle, reading already stopped, at a request boundary) and the
 * broker passes the descriptor on to a worker of the new generation, round robin. It
 * passes descriptors, never bytes: the master never reads from a handed-over socket.
 *
 * Every connection ends in exactly one place: a new worker (handedOver), back in the old
 * worker that sent it when no new worker could take it (returned: it drains there as
 * before), or closed when neither is alive (lost). The master's own copy of the descriptor
 * is closed once it went on.
 */
import { closeHandle, connMessage, type ConnMessage } from '../lib/protocol.js';
import type { Worker } from './worker.js';

export interface HandoverCounts {
  /** Connections now served by a worker of the new generation. */
  handedOver: number;
  /** Connections given back to the old worker (no new worker could take them): drained there. */
  returned: number;
  /** Connections closed because neither side was alive to take them. */
  lost: number;
}

/**
 * Connections each old worker may have waiting in the master per receiving worker (the
 * `window` of its `stop`); the master delivers one at a time per receiver.
 */
export const HANDOVER_WINDOW_PER_RECEIVER = 2;

export const zeroHandover = (): HandoverCounts => ({ handedOver: 0, returned: 0, lost: 0 });

export class HandoverBroker {
  readonly counts = zeroHandover();
  #next = 0;
  /** Connections delivered to each receiving worker. */
  readonly #delivered = new Map<Worker, number>();
  /** Forwards still on their way (the old worker may already have exited). */
  readonly #pending = new Set<Promise<void>>();
  readonly #targets: () => Worker[];

  /** `targets` lists the workers that may receive connections, read at each hand-over. */
  constructor(targets: () => Worker[]) {
    this.#targets = targets;
  }

  /** Passes one connection from `from` on; resolves once it has landed somewhere. */
  forward(from: Worker, listener: string | undefined, handle: unknown): Promise<void> {
    const p = this.#forward(from, listener, handle).finally(() => this.#pending.delete(p));
    this.#pending.add(p);
    return p;
  }

  /**
   * Resolves once every connection received so far has landed. Connections delivered to a
   * receiver that has died since went with it: they move from `handedOver` to `lost`.
   */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    for (const [w, n] of this.#delivered) {
      if (w.exitInfo === undefined || w.planned) continue;
      this.counts.handedOver -= n;
      this.counts.lost += n;
      this.#delivered.delete(w);
    }
  }

  async #forward(from: Worker, listener: string | undefined, handle: unknown): Promise<void> {
    const message = connMessage(listener);
    const candidates = this.#targets().filter((w) => w.acceptsConnections && takes(w, listener));
    // Taken before the first await: forwards run concurrently, each to the next target.
    const start = this.#next++;
    for (let i = 0; i < candidates.length; i++) {
      const target = candidates[(start + i) % candidates.length] as Worker;
      if (await delivered(target, message, handle)) {
        closeHandle(handle);
        this.counts.handedOver++;
        this.#delivered.set(target, (this.#delivered.get(target) ?? 0) + 1);
        return;
      }
    }
    if (await delivered(from, connMessage(listener, true), handle)) {
      closeHandle(handle);
      this.counts.returned++;
      return;
    }
    closeHandle(handle);
    this.counts.lost++;
  }
}

function takes(w: Worker, listener: string | undefined): boolean {
  const names = w.hello?.listeners ?? [];
  return listener === undefined || names.length === 0 || names.includes(listener);
}

/**
 * True once `w` got the message and handle. A worker that dies first may leave the send
 * queued forever in Node's IPC layer, so its exit counts as a failed delivery: the
 * descriptor is still ours and goes elsewhere (a dead receiver serves nothing twice).
 */
function delivered(w: Worker, message: ConnMessage, handle: unknown): Promise<boolean> {
  return Promise.race([w.send(message, handle), w.exited.then(() => false)]);
}
