/**
 * A TCP port free on `host` (127.0.0.1) right now. Apps that bind a port of their own choosing
 * (the point of the preload tests) need it before the master starts, so port 0 cannot be
 * used; the kernel hands out ephemeral ports in sequence, so a collision with another
 * test in the short gap before the master binds it is unlikely.
 */
import net from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
