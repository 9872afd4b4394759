/**
 * A tiny master for hand-over tests (worker channel v1): holds a listening socket without
 * accepting, reads the workers' channel messages, sends `stop`, and forwards the `conn`
 * handles one worker hands over to another, as raw handles it never reads. A handle the
 * receiver cannot take (it is gone) goes back to the sender, as CHANNEL.md asks of the master.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { TestContext } from 'node:test';

export interface ChannelMessage {
  hitless: 1;
  type: string;
  [key: string]: unknown;
}

interface RawHandle {
  close(): void;
}

interface Handle {
  fd: number;
  getsockname(out: { port?: number }): number;
  close(): void;
}

/** Binds 127.0.0.1:0 and makes it listen(2) without this process ever polling it (like the master). */
export function holdListeningSocket(t: TestContext): { fd: number; port: number } {
  // How Node's cluster holds shared handles: bind without listen, never accept.
  const handle = (net as unknown as { _createServerHandle(a: string, p: number, t: number): Handle | number })._createServerHandle('127.0.0.1', 0, 4);
  if (typeof handle === 'number') throw new Error(`bind failed: ${handle}`);
  t.after(() => handle.close());
  const out: { port?: number } = {};
  handle.getsockname(out);
  // listen(2) happens synchronously in listen({ fd }); the child exits before it could accept.
  const once = spawnSync(process.execPath, ['-e', "require('net').createServer().listen({fd:3}); process.exit(0)"], {
    stdio: ['ignore', 'inherit', 'inherit', handle.fd],
  });
  assert.equal(once.status, 0);
  return { fd: handle.fd, port: out.port! };
}

/** The channel messages of one worker, taken in order per type (never a sleep). */
export class Channel {
  private readonly seen: ChannelMessage[] = [];
  private readonly waiting: Array<{ type: string; resolve: (m: ChannelMessage) => void }> = [];

  constructor(readonly child: ChildProcess) {
    child.on('message', (message: unknown) => {
      const m = message as ChannelMessage | null;
      if (m?.hitless !== 1 || m.type === 'conn') return;
      const at = this.waiting.findIndex((w) => w.type === m.type);
      if (at !== -1) this.waiting.splice(at, 1)[0]!.resolve(m);
      else this.seen.push(m);
    });
  }

  /** The next (or an already received, not yet taken) message of `type`. */
  next(type: string): Promise<ChannelMessage> {
    const at = this.seen.findIndex((m) => m.type === type);
    if (at !== -1) return Promise.resolve(this.seen.splice(at, 1)[0]!);
    return new Promise((resolve, reject) => {
      this.waiting.push({ type, resolve });
      this.child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}) before "${type}"`)));
    });
  }

  stop(handover: boolean, window?: number): void {
    this.child.send({ hitless: 1, type: 'stop', handover, ...(window === undefined ? {} : { window }) });
  }
}

/**
 * Forwards `from`'s handed-over connections to `to`, one at a time. The broker keeps its copy
 * of each fd until `to`'s Node acknowledged it (NODE_HANDLE_ACK, which Node sends before any
 * code in `to` sees the handle): if `to` dies before that, the connection goes back to `from`.
 */
export class Broker {
  /** Handles written to `to`. */
  forwarded = 0;
  /** Handles given back to `from` because `to` could not take them. */
  handedBack = 0;
  /** Handles closed here because neither side could take them. */
  closedHere = 0;
  /** Called after each handle written to `to` (tests kill the receiver from here). */
  onForward: ((count: number) => void) | undefined;
  private readonly queue: Array<{ message: ChannelMessage; handle: RawHandle }> = [];
  private sending: { message: ChannelMessage; handle: RawHandle } | undefined;
  private readonly waiting: Array<{ count: number; resolve: () => void }> = [];
  /** Most connections received from `from` at once that had not landed yet. */
  maxInTransit = 0;
  private received = 0;
  private landedCount = 0;
  /** While true, nothing is forwarded (a slow receiver side); see release(). */
  private held = false;

  /** With `pace`, `from` gets `landed` for each of its connections once it landed, as the master says it. */
  constructor(
    private readonly from: ChildProcess,
    private readonly to: ChildProcess,
    private readonly options: { pace?: boolean; hold?: boolean } = {},
  ) {
    this.held = options.hold === true;
    from.on('message', (message: unknown, handle: unknown) => {
      const m = message as ChannelMessage | null;
      if (m?.hitless !== 1 || m.type !== 'conn' || handle == null) return;
      this.received++;
      this.maxInTransit = Math.max(this.maxInTransit, this.received - this.landedCount);
      this.queue.push({ message: m, handle: handle as RawHandle });
      this.pump();
    });
    to.on('internalMessage', (message: { cmd?: string } | null) => {
      const item = this.sending;
      if (item === undefined || (message?.cmd !== 'NODE_HANDLE_ACK' && message?.cmd !== 'NODE_HANDLE_NACK')) return;
      this.sending = undefined;
      if (message.cmd === 'NODE_HANDLE_NACK') this.handBack(item);
      else {
        item.handle.close(); // our copy; the receiver has its own
        this.forwarded++;
        this.onForward?.(this.forwarded);
        this.settle();
      }
      this.pump();
    });
    // Not acknowledged when the receiver died: the fd is still ours and goes back.
    to.once('exit', () => {
      const stuck = this.sending;
      this.sending = undefined;
      if (stuck !== undefined) this.handBack(stuck);
      this.pump();
    });
  }

  /** Connections received from `from` so far. */
  get receivedCount(): number {
    return this.received;
  }

  /** Starts forwarding what a `hold` broker kept. */
  release(): void {
    this.held = false;
    this.pump();
  }

  /** Resolves once `count` handles were forwarded, handed back or closed here. */
  handled(count: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push({ count, resolve });
      this.settle();
    });
  }

  private settle(): void {
    const total = this.forwarded + this.handedBack + this.closedHere;
    while (this.landedCount < total) {
      this.landedCount++;
      // `from` may be exiting (its last connection handed over): a closed pipe is not an error here.
      if (this.options.pace && this.from.connected) this.from.send({ hitless: 1, type: 'landed' }, () => {});
    }
    for (const w of this.waiting.filter((x) => x.count <= total)) {
      this.waiting.splice(this.waiting.indexOf(w), 1);
      w.resolve();
    }
  }

  private pump(): void {
    while (!this.held && this.sending === undefined && this.queue.length > 0) {
      const item = this.queue.shift()!;
      if (!this.to.connected || this.to.exitCode !== null || this.to.signalCode !== null) {
        this.handBack(item);
        continue;
      }
      this.sending = item;
      this.to.send(item.message, item.handle as never, (err) => {
        if (err === null || this.sending !== item) return;
        this.sending = undefined;
        this.handBack(item);
        this.pump();
      });
    }
  }

  private handBack(item: { message: ChannelMessage; handle: RawHandle }): void {
    if (!this.from.connected) {
      item.handle.close();
      this.closedHere++;
      this.settle();
      return;
    }
    this.from.send(item.message, item.handle as never, (err) => {
      item.handle.close();
      if (err) this.closedHere++;
      else this.handedBack++;
      this.settle();
    });
  }
}
