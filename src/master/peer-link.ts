/**
 * The new master's workers as places the old master's broker can send connections to
 * (core/handover.ts's `Receiver`): each connection goes to the new master as
 * `upgrade-conn` with its descriptor, naming the worker, and counts as delivered once the
 * new master answers `upgrade-landed` (it passed it on, or could not: then the descriptor
 * is still the old master's, to give elsewhere or back to the old worker).
 */
import type { Receiver } from '../core/handover.js';
import type { ConnMessage } from '../lib/protocol.js';
import type { Peer } from './peer.js';
import type { NewMasterMessage, PeerWorker } from './peer-protocol.js';

/**
 * A new master's worker, as a place handed-over connections can go (core/handover.ts).
 *
 * @example
 * new PeerLink(peer, [{ id: '8.0', pid: 4242, listeners: ['http'] }]).workers[0]?.takes('http'); // true
 */
export class RemoteWorker implements Receiver {
  gone = false;
  crashed = false;
  constructor(readonly info: PeerWorker, readonly link: PeerLink) {}

  takes(listener: string | undefined): boolean {
    const names = this.info.listeners;
    return !this.gone && (listener === undefined || names.length === 0 || names.includes(listener));
  }

  deliver(message: ConnMessage, handle: unknown): Promise<boolean> {
    return this.gone ? Promise.resolve(false) : this.link.deliver(this, message.listener, handle);
  }

  get diedUnasked(): boolean {
    return this.crashed;
  }
}

/**
 * The connections in transit to the new master, each answered by an `upgrade-landed`;
 * `workers` are the receivers (a worker the new master reports gone takes nothing more,
 * and what it took counts as lost when it crashed).
 *
 * @example
 * const link = new PeerLink(peer, ready.workers);
 * await supervisor.handOff(() => link.workers.filter((w) => !w.gone));
 */
export class PeerLink {
  #next = 1;
  readonly #waiting = new Map<number, (ok: boolean) => void>();
  readonly workers: RemoteWorker[];

  constructor(readonly peer: Peer, workers: PeerWorker[]) {
    this.workers = workers.map((w) => new RemoteWorker(w, this));
    peer.on('message', (m: NewMasterMessage) => {
      if (m.type === 'upgrade-landed') {
        this.#waiting.get(m.id)?.(m.ok);
        this.#waiting.delete(m.id);
      } else if (m.type === 'upgrade-worker-exit') {
        const w = this.workers.find((x) => x.info.id === m.id && x.info.pid === m.pid);
        if (w) Object.assign(w, { gone: true, crashed: m.crashed });
      }
    });
    // Gone before answering: the descriptor is still ours to give back to the old worker
    // (the new master's copy, and whatever it passed on, went with it).
    peer.once('exit', () => {
      for (const resolve of this.#waiting.values()) resolve(false);
      this.#waiting.clear();
    });
  }

  async deliver(w: RemoteWorker, listener: string | undefined, handle: unknown): Promise<boolean> {
    if (this.peer.exited) return false;
    const id = this.#next++;
    const landed = new Promise<boolean>((resolve) => this.#waiting.set(id, resolve));
    const sent = await this.peer.send({ hitless: 1, type: 'upgrade-conn', id, worker: w.info.id, pid: w.info.pid, listener }, handle);
    if (!sent) {
      this.#waiting.delete(id);
      return false;
    }
    return landed;
  }
}
