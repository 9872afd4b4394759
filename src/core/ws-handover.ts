/**
 * The master's side of the opt-in WebSocket hand-over (hitless/ws, issue 24): a draining
 * worker sends a WebSocket (`ws-conn`: the socket handle, the application's state and the
 * negotiated parameters) and the broker (handover.ts) passes it on, message intact, to a
 * ready worker of the next generation that said `ws-hello` for its listener; back to the
 * sender when none can take it (it closes it with 1001 there), closed when neither is alive.
 * Each one that landed is acknowledged with `ws-landed`, which paces the sender.
 *
 * Kept apart from the HTTP hand-over's routes: the two kinds are paced separately (`landed`
 * and `ws-landed`) and go to different receivers (a worker may take HTTP connections and
 * no WebSockets).
 */
import { message, type WsConnMessage } from '../lib/protocol.js';
import { HandoverBroker, type Receiver, type Sender } from './handover.js';
import type { Worker } from './worker.js';

const asReceiver = new WeakMap<Worker, Receiver>();

/**
 * `w` as a receiver of WebSockets: it takes one on a listener it said `ws-hello` for.
 *
 * @example
 * const broker = new HandoverBroker(() => next.live().map(webSocketReceiver));
 */
export function webSocketReceiver(w: Worker): Receiver {
  let r = asReceiver.get(w);
  if (r === undefined) {
    r = {
      takes: (listener) => w.takesWebSocket(listener),
      deliver: (m, handle) => w.deliver(m, handle),
      get diedUnasked() {
        return w.diedUnasked;
      },
    };
    asReceiver.set(w, r);
  }
  return r;
}

/**
 * Which broker takes the WebSockets each worker sends; one sent with no route goes back to it.
 *
 * @example
 * wsRoutes.open(oldWorker, broker);
 * worker.on('message', (m, handle) => m.type === 'ws-conn' && wsRoutes.receive(worker, m, handle));
 */
export class WebSocketRoutes {
  readonly #routes = new Map<Sender, HandoverBroker>();

  open(from: Sender, broker: HandoverBroker): void {
    this.#routes.set(from, broker);
  }

  close(from: Sender): void {
    this.#routes.delete(from);
  }

  /** One WebSocket `from` sent: passed on with its state and parameters, then `ws-landed` tells `from` the next may go. */
  receive(from: Sender, m: WsConnMessage, handle: unknown): void {
    const broker = this.#routes.get(from) ?? new HandoverBroker(() => []);
    const { hitless: _v, returned: _r, ...body } = m;
    const as = (returned: boolean): WsConnMessage => message<WsConnMessage>({ ...body, ...(returned ? { returned: true } : {}) });
    void broker.forward(from, m.listener, handle, as).then(() => from.send(message({ type: 'ws-landed' })));
  }
}
