/**
 * The master's side of the two-way worker channel (protocol version 1).
 *
 * The carrier is Node's IPC channel, the stdio entry right after the readiness socket:
 * the only public way Node passes file descriptors between processes (SCM_RIGHTS), which
 * connection hand-over needs. The readiness socket stays as it is (sd_notify lines, the
 * lifeline) for programs in every language; a worker that never speaks on the channel is
 * an sd_notify worker and loses nothing. docs/ARCHITECTURE.md, "The worker channel",
 * lists every message; this module is the one parser of what workers send.
 */

import { LATENCY_BOUNDS_MS } from '../lib/stats.js';

/** The channel protocol version, sent in every message as `hitless`. */
export const PROTOCOL = 1;

/** Status classes a `stats` message counts. */
export const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx'] as const;

/**
 * A worker's traffic figures, cumulative since it started (src/lib/stats.ts sends them
 * every second): finished responses by status class, a latency histogram over
 * LATENCY_BOUNDS_MS (one more bucket for everything slower) and the latencies' sum in ms.
 */
export interface StatsMessage {
  hitless: 1;
  type: 'stats';
  requests: Record<(typeof STATUS_CLASSES)[number], number>;
  latency: number[];
  latencySum: number;
}

/** What a worker said about itself (`hello`). */
export interface Hello {
  /** It can receive handed-over HTTP/1.1 connections. */
  handover: boolean;
  /** Names of the listeners it can receive handed-over connections for. */
  listeners: string[];
  /**
   * Names of every inherited socket it accepts on (undefined: it did not say, as a worker of
   * an older library or another language may not): a socket left out is unserved, and the
   * generation is refused at readiness (listening.ts).
   */
  adopted?: string[] | undefined;
}

export type ChannelMessage =
  | { hitless: 1; type: 'hello'; handover?: boolean; listeners?: string[]; adopted?: string[] }
  | { hitless: 1; type: 'conn'; listener?: string }
  | { hitless: 1; type: 'handover-done'; handedOver?: number; kept?: number }
  | { hitless: 1; type: 'drained'; drained?: number; forced?: number }
  | StatsMessage;

const TYPES = new Set(['hello', 'conn', 'handover-done', 'drained', 'stats']);

/**
 * The message, when `raw` is a channel message of a version and type this master knows;
 * undefined for anything else (another protocol, garbage), which the master ignores.
 *
 * @example
 * parseChannelMessage({ hitless: 1, type: 'hello', handover: true }); // the message
 * parseChannelMessage('READY=1'); // undefined
 */
export function parseChannelMessage(raw: unknown): ChannelMessage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  if (m.hitless !== PROTOCOL || typeof m.type !== 'string' || !TYPES.has(m.type)) return undefined;
  for (const key of ['listeners', 'adopted']) {
    if (m[key] !== undefined && !(Array.isArray(m[key]) && (m[key] as unknown[]).every((l) => typeof l === 'string'))) return undefined;
  }
  if (m.listener !== undefined && typeof m.listener !== 'string') return undefined;
  for (const key of ['handedOver', 'kept', 'drained', 'forced']) {
    if (m[key] !== undefined && !(Number.isInteger(m[key]) && (m[key] as number) >= 0)) return undefined;
  }
  if (m.type === 'stats' && !validStats(m)) return undefined;
  return m as ChannelMessage;
}

const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

function validStats(m: Record<string, unknown>): boolean {
  const r = m.requests as Record<string, unknown> | null | undefined;
  if (typeof r !== 'object' || r === null || !STATUS_CLASSES.every((c) => count(r[c]))) return false;
  if (!Array.isArray(m.latency) || m.latency.length !== LATENCY_BOUNDS_MS.length + 1 || !m.latency.every(count)) return false;
  return typeof m.latencySum === 'number' && Number.isFinite(m.latencySum) && m.latencySum >= 0;
}
