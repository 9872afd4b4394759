/**
 * The old master's side of the carrier to the new master in an upgrade: the new master is
 * this process's child, started with every listening socket in its stdio array (fds 3, 4,
 * … land where the array puts them) and Node's IPC channel right after them, the only
 * public way Node passes descriptors between processes (SCM_RIGHTS), which moving
 * connections needs. stdin, stdout and stderr are inherited: the new master logs where
 * this one does (the journal, a supervisor's pipe), and keeps doing so once this one is
 * gone.
 *
 * Like the worker transport (src/core/process.ts), it sends through an IpcSender
 * (src/core/ipc-send.ts): handles one at a time, delivered only on the receiver's
 * acknowledgement (NODE_HANDLE_ACK); until then the descriptor is still ours to give elsewhere.
 */
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { ProcessExit } from '../core/host.js';
import { IpcSender } from '../core/ipc-send.js';
import { closeHandle } from '../lib/protocol.js';
import { parsePeerMessage, type NewMasterMessage, type OldMasterMessage } from './peer-protocol.js';

/** How to start the new master. */
export interface PeerLaunch {
  /** Program and arguments (`node …/cli/main.js start …`, or a launcher). */
  command: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  /** The listening sockets, given to the new master as fds 3, 4, … in this order. */
  fds: number[];
}

/**
 * The new master, seen from the old one. Events: `message` (message: NewMasterMessage),
 * `exit` (exit: ProcessExit), exactly once.
 */
export interface Peer extends EventEmitter {
  readonly pid: number | undefined;
  /** True once it exited. */
  readonly exited: boolean;
  /** Sends a message (with a socket handle for `upgrade-conn`): true once it has it. */
  send(message: OldMasterMessage, handle?: unknown): Promise<boolean>;
  signal(signal: NodeJS.Signals): void;
}

class ChildPeer extends EventEmitter implements Peer {
  readonly #child: ChildProcess;
  #exited = false;
  readonly #sender: IpcSender;

  constructor(launch: PeerLaunch) {
    super();
    const [file, ...args] = launch.command as [string, ...string[]];
    this.#child = spawn(file, args, {
      cwd: launch.cwd,
      env: launch.env,
      stdio: ['inherit', 'inherit', 'inherit', ...launch.fds, 'ipc'],
      serialization: 'json',
    });
    const child = this.#child;
    child.once('exit', (code, signal) => this.#exit({ code, signal }));
    child.once('error', (err) => {
      if (child.pid === undefined) this.#exit({ code: null, signal: null, spawnError: err });
    });
    child.on('error', () => {}); // a send on a closed channel: send() reports it
    child.on('message', (raw: unknown, handle: unknown) => {
      // The new master never sends handles; one that came anyway must not leak here.
      if (handle != null) closeHandle(handle);
      const message = parsePeerMessage(raw, 'new');
      if (message) this.emit('message', message satisfies NewMasterMessage);
    });
    this.#sender = new IpcSender(child);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  send(message: OldMasterMessage, handle?: unknown): Promise<boolean> {
    return this.#sender.send(message, handle);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // already gone
    }
  }

  #exit(exit: ProcessExit): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#sender.close();
    this.emit('exit', exit);
  }
}

/**
 * Starts the new master of an upgrade.
 *
 * @example
 * const peer = spawnPeer({ command: [process.execPath, cli, 'start', ...argv], cwd, env, fds: listeners.fds });
 * peer.on('message', (m) => …);
 */
export function spawnPeer(launch: PeerLaunch): Peer {
  return new ChildPeer(launch);
}
