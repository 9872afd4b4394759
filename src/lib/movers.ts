/**
 * What moves upgraded connections to the next generation instead of closing them: nothing
 * by default (they are sent away with close 1001, goaway.ts); the opt-in WebSocket hand-over
 * (hitless/ws, which brings `ws` as a peer dependency) registers itself here, so the
 * zero-dependency library never imports it (issue 24).
 */
import type { Duplex } from 'node:stream';

/** Moves upgraded connections to the master, which passes them to the next generation. */
export interface UpgradeMover {
  /**
   * Moves those of `sockets` it can (they arrived on `listener`), calling `moved` for each
   * one the master took; resolves with the others, which the drain then closes.
   */
  move(sockets: Duplex[], listener: string, moved: (socket: Duplex) => void): Promise<Duplex[]>;
}

let mover: UpgradeMover | undefined;

/**
 * Registers the process's mover (internal: hitless/ws calls it; the last call wins).
 *
 * @example
 * setUpgradeMover({ move: async (sockets) => sockets }); // moves nothing
 */
export function setUpgradeMover(m: UpgradeMover | undefined): void {
  mover = m;
}

/** The registered mover, if any. */
export function upgradeMover(): UpgradeMover | undefined {
  return mover;
}
