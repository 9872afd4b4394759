/**
 * The control protocol: versioned JSON lines over the master's unix socket
 * (docs/CLI.md, "Control protocol"). One request per line; the server answers each with
 * one response line carrying the same id, and for `reload` and `scale` streams event lines first.
 */
import type { HitlessErrorCode } from '../errors.js';
import type { MasterEvent } from './types.js';

export const PROTOCOL_VERSION = 1;
/** Longest accepted line, newline excluded; a longer one is answered and the connection closed. */
export const MAX_LINE_BYTES = 64 * 1024;
export const CONTROL_COMMANDS = ['status', 'reload', 'stop', 'scale'] as const;
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

/**
 * Splits a byte stream into lines, refusing to buffer more than `maxBytes` without a newline.
 *
 * @example
 * const split = new LineSplitter(MAX_LINE_BYTES, (line) => handle(line), () => socket.end());
 * socket.on('data', (chunk) => split.push(chunk));
 */
export class LineSplitter {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #overflowed = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.#overflowed) return;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const part = chunk.subarray(start, nl);
      if (this.#pendingBytes + part.length > this.maxBytes) return this.#overflow();
      const line = Buffer.concat([...this.#pending, part]).toString('utf8');
      this.#pending = [];
      this.#pendingBytes = 0;
      start = nl + 1;
      this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      if (this.#overflowed) return;
    }
    const rest = chunk.subarray(start);
    if (this.#pendingBytes + rest.length > this.maxBytes) return this.#overflow();
    if (rest.length > 0) {
      this.#pending.push(rest);
      this.#pendingBytes += rest.length;
    }
  }

  #overflow(): void {
    this.#overflowed = true;
    this.#pending = [];
    this.onOverflow();
  }
}
