// A local artifact server for fetcher tests: one good artifact with ETag/304, and misbehaving routes.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export class ArtifactServer extends EventEmitter {
  artifact: Buffer = Buffer.alloc(0);
  /** Ignore If-None-Match (a server without conditional GET). */
  ignoreConditional = false;
  /** Send this Last-Modified with `/app.tgz` (no ETag then) and answer If-Modified-Since with 304, as a static file server (python's http.server). */
  lastModified: Date | undefined;
  /** Where `/cross` redirects (another origin). */
  redirectTo = '';
  /** What `/app.tgz` does instead of answering (end-to-end tests switch it). */
  mode: 'ok' | 'truncate' | '500' = 'ok';
  requests: Array<{ path: string; ifNoneMatch: string | undefined; status: number }> = [];
  headersSeen: IncomingMessage['headers'][] = [];
  readonly #sockets = new Set<Socket>();
  readonly #server = createServer((req, res) => this.#handle(req, res));
  base = '';

  async start(): Promise<this> {
    this.#server.on('connection', (s) => { this.#sockets.add(s); s.on('close', () => this.#sockets.delete(s)); });
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }
  async close(): Promise<void> {
    // Stop accepting first: a master still polling must not open a connection we never close.
    const closed = new Promise((r) => this.#server.close(r));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
  get etag(): string {
    return `"${createHash('sha256').update(this.artifact).digest('hex').slice(0, 16)}"`;
  }
  get sha256(): string {
    return createHash('sha256').update(this.artifact).digest('hex');
  }
  /** Resolves once `n` requests were answered in total. */
  served(n: number): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.requests.length >= n) { this.off('request-done', check); resolve(); }
      };
      this.on('request-done', check);
    });
  }
  #done(req: IncomingMessage, status: number): void {
    this.requests.push({ path: req.url ?? '', ifNoneMatch: req.headers['if-none-match'], status });
    this.headersSeen.push(req.headers);
    this.emit('request-done');
  }
  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0]!; // a presigned URL's query names the same file
    if (path === '/hang') { this.#done(req, 0); return; } // never answers
    if (path === '/cross') { res.writeHead(302, { location: this.redirectTo }).end(); this.#done(req, 302); return; }
    if (path === '/app.tgz' && this.mode === '500') { res.writeHead(500).end('boom'); this.#done(req, 500); return; }
    if (path === '/app.tgz' && this.mode === 'truncate') {
      res.writeHead(200, { 'content-length': this.artifact.length });
      res.write(this.artifact.subarray(0, 10), () => { res.socket?.destroy(); this.#done(req, 200); });
      return;
    }
    if (path === '/app.tgz' || path === '/redirect') {
      if (path === '/redirect') { res.writeHead(302, { location: '/app.tgz' }).end(); this.#done(req, 302); return; }
      if (this.lastModified !== undefined) {
        const since = Date.parse(req.headers['if-modified-since'] ?? '');
        if (!Number.isNaN(since) && Math.floor(this.lastModified.getTime() / 1000) * 1000 <= since) { res.writeHead(304).end(); this.#done(req, 304); return; }
        res.writeHead(200, { 'content-length': this.artifact.length, 'last-modified': this.lastModified.toUTCString() }).end(this.artifact);
        this.#done(req, 200);
        return;
      }
      if (!this.ignoreConditional && req.headers['if-none-match'] === this.etag) { res.writeHead(304).end(); this.#done(req, 304); return; }
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': this.artifact.length, etag: this.etag }).end(this.artifact);
      this.#done(req, 200);
      return;
    }
    if (path === '/app.tgz.sha256') { res.end(`${'0'.repeat(64)}  other.tgz\n${this.sha256}  app.tgz\n`); this.#done(req, 200); return; }
    if (path === '/404') { res.writeHead(404).end('not found'); this.#done(req, 404); return; }
    if (path === '/500') { res.writeHead(500).end('boom'); this.#done(req, 500); return; }
    if (path === '/truncated') {
      res.writeHead(200, { 'content-length': this.artifact.length });
      res.write(this.artifact.subarray(0, 10), () => { res.socket?.destroy(); this.#done(req, 200); });
      return;
    }
    if (path === '/truncated-chunked') {
      res.writeHead(200);
      res.write(this.artifact.subarray(0, 10), () => { res.socket?.destroy(); this.#done(req, 200); });
      return;
    }
    if (path === '/stalls') { res.writeHead(200, { 'content-length': this.artifact.length }); res.write(this.artifact.subarray(0, 10)); this.#done(req, 200); return; }
    if (path === '/big') { res.writeHead(200, { 'content-length': 10_000_000 }); res.write(Buffer.alloc(1000)); this.#done(req, 200); return; }
    if (path === '/big-chunked') {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024);
      let sent = 0;
      const pump = (): void => { while (sent < 50 && res.write(chunk)) sent++; if (sent < 50) res.once('drain', pump); else res.end(); };
      res.on('close', () => this.#done(req, 200));
      pump();
      return;
    }
    res.writeHead(404).end();
    this.#done(req, 404);
  }
}
