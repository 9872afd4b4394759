/**
 * In-process server helpers: listen on 127.0.0.1:0 and always close at the end of the test.
 */
import type net from 'node:net';
import type { TestContext } from 'node:test';

/** Listens on an ephemeral 127.0.0.1 port; the server is destroyed-closed after the test. */
export async function listenLocal(t: TestContext, server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  t.after(() => {
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    if (server.listening) server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

/** A promise and its resolve function (to hold a response until the test says so). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
