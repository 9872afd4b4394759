/**
 * What two masters say to each other during an upgrade (src/master/upgrade.ts runs the old
 * side, successor.ts the new side). The carrier is the Node IPC channel the old master
 * opens when it spawns the new one (the stdio entry right after the handed-over sockets):
 * JSON messages, and socket handles beside `upgrade-conn`, which is how a keep-alive
 * connection moves from an old worker to a new one (old worker → old master → new master
 * → new worker). Its own message types, distinct from the worker channel's
 * (src/lib/protocol.ts): no worker ever sees them.
 *
 * old → new: `upgrade-state` (first: the sockets at fds 3…, the counters), `upgrade-commit`
 * (take control.sock and the pid file), `upgrade-takeover` (the triggers, metrics and
 * systemd are yours; with the traffic totals, and the reload requests held for you),
 * `upgrade-conn` + handle, `upgrade-done` (with what was held since).
 * new → old: `upgrade-ready` (first generation serving; its workers), `upgrade-failed`,
 * `upgrade-committed`, `upgrade-landed` (one `upgrade-conn` reached a worker, or not),
 * `upgrade-worker-exit`.
 */
import type { SupervisorResume } from '../core/supervisor.js';
import type { ReleaseTraffic, ReloadRequestCounts } from '../core/types.js';
import type { MetricTotals } from '../ops/counters.js';
import type { SocketDescription } from './listeners.js';

/** Version of this protocol; the old master sends it in HITLESS_UPGRADE and `upgrade-state`. */
export const UPGRADE_PROTOCOL = 1;
/** Set in the new master's environment by the old one: this `hitless start` takes over (its value: the protocol version). */
export const UPGRADE_ENV = 'HITLESS_UPGRADE';

/** A worker of the new master that takes handed-over connections. */
export interface PeerWorker {
  /** `<generation>.<slot>`, and its pid: the old master names the target of each connection by both. */
  id: string;
  pid: number;
  /** Listener names it serves (empty: any). */
  listeners: string[];
}

/** The `hitless scale` override in force, kept by the new master (reconfigure.ts). */
export interface ScaleOverride {
  workers: number;
  readWorkers: number;
}

export type OldMasterMessage =
  | {
      hitless: 1; type: 'upgrade-state'; protocol: number;
      from: { pid: number; version: string; node?: string };
      sockets: SocketDescription[];
      supervisor: SupervisorResume;
      scale?: ScaleOverride | undefined;
    }
  | { hitless: 1; type: 'upgrade-commit' }
  | ({ hitless: 1; type: 'upgrade-takeover'; releases: ReleaseTraffic[]; metrics?: MetricTotals | undefined } & HandedOn)
  | { hitless: 1; type: 'upgrade-conn'; id: number; worker: string; pid: number; listener?: string | undefined }
  | ({ hitless: 1; type: 'upgrade-done'; releases: ReleaseTraffic[] } & HandedOn);

/**
 * What the old master took in since it sent its state, for the new one (upgrade.ts): the
 * reload requests it held (a SIGHUP each; the new master runs one reload for them), and the
 * request counts to add (a `hitless reload` refused during the upgrade, a SIGHUP merged).
 */
export interface HandedOn {
  reloads?: string[] | undefined;
  reloadRequests?: Partial<ReloadRequestCounts> | undefined;
}

export type NewMasterMessage =
  | { hitless: 1; type: 'upgrade-ready'; pid: number; version: string; node?: string; generation: number; workers: PeerWorker[] }
  | { hitless: 1; type: 'upgrade-failed'; error: { code: string; message: string; output: string[] } }
  | { hitless: 1; type: 'upgrade-committed' }
  | { hitless: 1; type: 'upgrade-landed'; id: number; ok: boolean }
  | { hitless: 1; type: 'upgrade-worker-exit'; id: string; pid: number; crashed: boolean };

const OLD_TYPES = new Set(['upgrade-state', 'upgrade-commit', 'upgrade-takeover', 'upgrade-conn', 'upgrade-done']);
const NEW_TYPES = new Set(['upgrade-ready', 'upgrade-failed', 'upgrade-committed', 'upgrade-landed', 'upgrade-worker-exit']);

/**
 * The message, when `raw` is one the other master may send; undefined for anything else
 * (the receiver ignores it, closing a handle that came with it). The two masters are
 * parent and child on one machine, so the check is of form, not of trust.
 *
 * @example
 * parsePeerMessage({ hitless: 1, type: 'upgrade-committed' }, 'new'); // the message
 * parsePeerMessage({ hitless: 1, type: 'stop' }, 'new');              // undefined
 */
export function parsePeerMessage(raw: unknown, from: 'old'): OldMasterMessage | undefined;
export function parsePeerMessage(raw: unknown, from: 'new'): NewMasterMessage | undefined;
export function parsePeerMessage(raw: unknown, from: 'old' | 'new'): OldMasterMessage | NewMasterMessage | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const m = raw as Record<string, unknown>;
  if (m.hitless !== 1 || typeof m.type !== 'string' || !(from === 'old' ? OLD_TYPES : NEW_TYPES).has(m.type)) return undefined;
  const int = (k: string): boolean => Number.isSafeInteger(m[k]);
  switch (m.type) {
    case 'upgrade-state':
      return int('protocol') && Array.isArray(m.sockets) && typeof m.supervisor === 'object' ? (m as never) : undefined;
    case 'upgrade-conn':
      return int('id') && int('pid') && typeof m.worker === 'string' ? (m as never) : undefined;
    case 'upgrade-ready':
      return int('pid') && int('generation') && typeof m.version === 'string' && Array.isArray(m.workers) ? (m as never) : undefined;
    case 'upgrade-landed':
      return int('id') && typeof m.ok === 'boolean' ? (m as never) : undefined;
    case 'upgrade-failed':
      return typeof m.error === 'object' && m.error !== null ? (m as never) : undefined;
    default:
      return m as never;
  }
}
