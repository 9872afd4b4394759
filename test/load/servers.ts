/**
 * Small raw HTTP/1.1 servers on 127.0.0.1 (or a unix socket) for testing the load client:
 * each counts what it received and did, so a test can check the client's counts against
 * the server's: every request the server read is either answered or deliberately lost,
 * and the client records each one exactly once.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

export interface Request {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What a handler does with a request: answer it, or lose it on purpose. */
export type Action = 'answer' | 'reset' | 'close' | 'ignore';

export interface Conn {
  /** Arrival times (performance.now) of the requests on this connection. */
  arrivals: number[];
  socket: Socket;
}

export interface Counts {
  accepted: number;
  received: number;
  answered: number;
  reset: number;
  closed: number;
  ignored: number;
  /** Most connections open at once. */
  peakOpen: number;
  /** Answered requests per X-Generation value sent. */
  byAnswer: Record<string, number>;
}

export interface TestServer {
  url: string;
  port: number;
  counts: Counts;
  conns: Conn[];
  server: Server;
}

export interface ServerOptions {
  /** Decide per request (n = 1-based count over the server's life). Default: answer. */
  action?: (n: number, req: Request, conn: Conn) => Action;
  /** X-Generation value for an answer (default none). */
  answerWith?: (n: number, conn: Conn) => string | undefined;
  /** Write the answer; default `HTTP/1.1 200` with Content-Length. */
  write?: (socket: Socket, generation: string | undefined) => void;
  /** After answering, end the connection although the response said keep-alive. */
  endAfterAnswer?: boolean;
  /** Listen on this unix socket path instead of 127.0.0.1:0. */
  path?: string;
}

function defaultWrite(socket: Socket, generation: string | undefined): void {
  const gen = generation === undefined ? '' : `X-Generation: ${generation}\r\n`;
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 3\r\n${gen}\r\nok\n`);
}

/** Parse requests off a connection as they complete (GET, or a body with Content-Length). */
function onRequests(socket: Socket, each: (req: Request) => void): void {
  let buf = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [line = '', ...rest] = buf.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const h of rest) {
        const i = h.indexOf(':');
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (buf.length < end + 4 + length) return;
      const body = buf.slice(end + 4, end + 4 + length);
      buf = buf.slice(end + 4 + length);
      const [method = '', path = ''] = line.split(' ');
      each({ method, path, headers, body });
      if (socket.destroyed) return;
    }
  });
}

export async function startServer(t: TestContext, o: ServerOptions = {}): Promise<TestServer> {
  const counts: Counts = { accepted: 0, received: 0, answered: 0, reset: 0, closed: 0, ignored: 0, peakOpen: 0, byAnswer: {} };
  const conns: Conn[] = [];
  let open = 0;
  const server = createServer((socket) => {
    counts.accepted++;
    counts.peakOpen = Math.max(counts.peakOpen, ++open);
    socket.once('close', () => open--);
    socket.on('error', () => undefined); // resets from the client side are the client's business
    const conn: Conn = { arrivals: [], socket };
    conns.push(conn);
    onRequests(socket, (req) => {
      const n = ++counts.received;
      conn.arrivals.push(performance.now());
      const action = o.action?.(n, req, conn) ?? 'answer';
      if (action === 'reset') {
        counts.reset++;
        socket.resetAndDestroy();
      } else if (action === 'close') {
        counts.closed++;
        socket.destroy();
      } else if (action === 'ignore') {
        counts.ignored++;
      } else {
        counts.answered++;
        const g = o.answerWith?.(n, conn);
        if (g !== undefined) counts.byAnswer[g] = (counts.byAnswer[g] ?? 0) + 1;
        (o.write ?? defaultWrite)(socket, g);
        if (o.endAfterAnswer) socket.end();
      }
    });
  });
  await new Promise<void>((resolve) => (o.path ? server.listen(o.path, resolve) : server.listen(0, '127.0.0.1', resolve)));
  t.after(async () => {
    for (const c of conns) c.socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/`, port, counts, conns, server };
}

/** A port with nothing listening: bound once by a server that is then closed. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const address = s.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => s.close(resolve));
  return port;
}
