/**
 * A fake new master for the upgrade's unit tests (src/master/upgrade.ts): it records what
 * the old master sends and does only what the test (or a default behaviour) tells it, on
 * the fake host's clock. No process, no socket, no sleep.
 */
import { EventEmitter } from 'node:events';
import type { ProcessExit } from '../../src/core/host.js';
import type { Peer, PeerLaunch } from '../../src/master/peer.js';
import type { NewMasterMessage, OldMasterMessage, PeerWorker } from '../../src/master/peer-protocol.js';

export class FakePeer extends EventEmitter implements Peer {
  readonly pid: number;
  readonly launch: PeerLaunch;
  readonly sent: { message: OldMasterMessage; handle: unknown }[] = [];
  readonly signals: NodeJS.Signals[] = [];
  exited = false;

  constructor(pid: number, launch: PeerLaunch) {
    super();
    this.pid = pid;
    this.launch = launch;
  }

  async send(message: OldMasterMessage, handle?: unknown): Promise<boolean> {
    if (this.exited) return false;
    this.sent.push({ message, handle });
    queueMicrotask(() => this.emit('sent', message, handle));
    return true;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exited) return;
    this.signals.push(signal);
    this.emit('signal', signal);
  }

  /** What the new master says. */
  say(message: NewMasterMessage): void {
    this.emit('message', message);
  }

  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    const exit: ProcessExit = { code, signal };
    this.emit('exit', exit);
  }

  types(): string[] {
    return this.sent.map((s) => s.message.type);
  }
}

/** How the fake new master behaves unless a test takes over. */
export type PeerBehaviour = (p: FakePeer) => void;

/** The new master's workers the default behaviour reports. */
export const NEW_WORKERS: PeerWorker[] = [
  { id: '2.0', pid: 7001, listeners: ['http'] },
  { id: '2.1', pid: 7002, listeners: ['http'] },
];

/**
 * Starts, reports ready with {@link NEW_WORKERS}, commits when told, takes every
 * connection, and exits 0 on SIGTERM.
 */
export const goodSuccessor: PeerBehaviour = (p) => {
  p.on('sent', (m: OldMasterMessage) => {
    if (m.type === 'upgrade-state') p.say({ hitless: 1, type: 'upgrade-ready', pid: p.pid, version: '9.9.9', node: 'v99.0.0', generation: m.supervisor.nextGeneration, workers: NEW_WORKERS });
    else if (m.type === 'upgrade-commit') p.say({ hitless: 1, type: 'upgrade-committed' });
    else if (m.type === 'upgrade-conn') p.say({ hitless: 1, type: 'upgrade-landed', id: m.id, ok: true });
  });
  p.on('signal', (s: NodeJS.Signals) => {
    if (s === 'SIGTERM' || s === 'SIGKILL') queueMicrotask(() => p.exit(s === 'SIGKILL' ? null : 0, s === 'SIGKILL' ? 'SIGKILL' : null));
  });
};
