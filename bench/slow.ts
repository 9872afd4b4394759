/**
 * One slow request (GET /slow, answered after 1 s) on its own connection, used to have
 * a long request in flight at the moment of a reload. Resolves with how it ended.
 */
import { connect } from 'node:net';

export type SlowOutcome = 'ok' | 'non2xx' | 'reset' | 'refused' | 'closed' | 'timeout' | 'other';

export interface SlowRequest {
  /** Resolves once the request bytes were handed to a connected socket. */
  sent: Promise<void>;
  done: Promise<SlowOutcome>;
}

export function slowRequest(port: number, timeoutMs = 15_000): SlowRequest {
  let markSent: () => void = () => undefined;
  const sent = new Promise<void>((r) => (markSent = r));
  const done = new Promise<SlowOutcome>((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let data = '';
    let outcome: SlowOutcome | undefined;
    const finish = (o: SlowOutcome): void => {
      outcome ??= o;
      sock.destroy();
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.once('connect', () => {
      sock.write(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, () => markSent());
    });
    sock.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      if (data.includes('\r\n\r\n')) finish(/^HTTP\/1\.1 2/.test(data) ? 'ok' : 'non2xx');
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      finish(err.code === 'ECONNRESET' ? 'reset' : err.code === 'ECONNREFUSED' ? 'refused' : 'other');
    });
    sock.once('close', () => {
      clearTimeout(timer);
      markSent();
      resolve(outcome ?? 'closed');
    });
  });
  return { sent, done };
}
