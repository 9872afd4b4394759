/**
 * Seeing upgraded (WebSocket) connections without changing how node:http treats Upgrade
 * requests: Node answers an `Upgrade` request as a plain request while the server has no
 * 'upgrade' listener, so ours is present only while the application has one of its own.
 */
import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { AnyServer } from './types.js';

/** Calls `onUpgrade` (before the application's listeners) for every upgraded connection. */
export function watchUpgrades(server: AnyServer, onUpgrade: (req: http.IncomingMessage, socket: Duplex) => void): void {
  const others = (): number => server.listeners('upgrade').filter((l) => l !== onUpgrade).length;
  const ours = (): boolean => server.listeners('upgrade').includes(onUpgrade);
  server.on('newListener', (event: string | symbol, listener: unknown) => {
    if (event === 'upgrade' && listener !== onUpgrade && !ours()) server.prependListener('upgrade', onUpgrade);
  });
  server.on('removeListener', (event: string | symbol, listener: unknown) => {
    if (event === 'upgrade' && listener !== onUpgrade && others() === 0 && ours()) {
      server.removeListener('upgrade', onUpgrade);
    }
  });
  if (others() > 0) server.prependListener('upgrade', onUpgrade);
}
