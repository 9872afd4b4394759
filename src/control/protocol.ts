/**
 * The control protocol: versioned JSON lines over the master's unix socket
 * (docs/CLI.md, "Control protocol"). One request per line; the server answers each with
 * one response line carrying the same id, and for `reload`, `scale` and `upgrade` streams event lines first.
 */
import type { HitlessErrorCode } from '../errors.js';
import type { MasterEvent } from '../core/types.js';

export const PROTOCOL_VERSION = 1;
/** Longest accepted line, newline excluded; a longer one is answered and the connection closed. */
export const MAX_LINE_BYTES = 64 * 1024;
export const CONTROL_COMMANDS = ['status', 'reload', 'stop', 'scale', 'upgrade'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export interface ControlRequest {
  v: typeof PROTOCOL_VERSION;
  id: number;
  cmd: ControlCommand;
  args?: Record<string, unknown>;
}

export type ControlMessage =
  | { v: number; id: number | null; ok: true; result: unknown }
  | { v: number; id: number | null; ok: false; error: { code: HitlessErrorCode | string; message: string } }
  | { v: number; id: number; event: MasterEvent };

/** Encodes one message as a line. */
export function encode(message: ControlMessage | ControlRequest): string {
  return JSON.stringify(message) + '\n';
}
