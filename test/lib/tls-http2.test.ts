/**
 * shutdown() over TLS (https), HTTP/2 cleartext (h2c), and HTTP/2 over TLS with HTTP/1 fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import { once } from 'node:events';
import { shutdown, track } from '../../src/index.js';
import { deferred, listenLocal } from './helpers/servers.js';
import { selfSignedCert } from './helpers/tls.js';

/** One HTTPS request on a keep-alive agent; resolves with status, headers and body. */
function httpsGet(port: number, agent: https.Agent, ca: Buffer, path = '/'): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', servername: 'localhost', port, path, agent, ca }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on('error', reject);
  });
}

test('in-flight HTTPS request is not killed at stop (stoppable #20): it completes with Connection: close', async (t) => {
  const { key, cert } = selfSignedCert(t);
  const release = deferred();
  const started = deferred();
  const server = https.createServer({ key, cert }, async (req, res) => {
    if (req.url === '/slow') {
      started.resolve();
      await release.promise;
    }
    res.end('secure');
  });
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const agent = new https.Agent({ keepAlive: true });
  t.after(() => agent.destroy());

  const warm = await httpsGet(port, agent, cert);
  assert.equal(warm.connection, 'keep-alive');
  const slow = httpsGet(port, new https.Agent({ keepAlive: true }), cert, '/slow');
  await started.promise;
  const done = shutdown(server, { idleGrace: 20, timeout: 60_000 });
  release.resolve();
  const res = await slow;
  assert.equal(res.status, 200);
  assert.equal(res.body, 'secure');
  assert.equal(res.connection, 'close');
  const result = await done;
  assert.equal(result.timedOut, false);
  assert.equal(result.drained.requests, 1);
  assert.equal(result.drained.connections, 2, 'the idle keep-alive TLS connection was closed after the grace');
});

test('HTTP/2 sessions are closed with GOAWAY at shutdown (node #57611), open streams finish', async (t) => {
  const release = deferred();
  const started = deferred();
  const server = http2.createServer();
  server.on('stream', async (stream) => {
    started.resolve();
    await release.promise;
    stream.respond({ ':status': 200 });
    stream.end('h2c done');
  });
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const client = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => client.destroy());
  const goaway = once(client, 'goaway');
  const req = client.request({ ':path': '/' });
  let body = '';
  req.setEncoding('utf8').on('data', (c: string) => (body += c));
  const ended = once(req, 'end');
  await started.promise;
  const done = shutdown(server, { timeout: 60_000 });
  await goaway;
  release.resolve();
  await ended;
  assert.equal(body, 'h2c done');
  const result = await done;
  assert.equal(result.timedOut, false);
  assert.equal(result.drained.sessions, 1);
  assert.equal(result.drained.requests, 1);
  assert.deepEqual(result.forced, { requests: 0, connections: 0, sessions: 0, upgraded: 0 });
});

test('HTTP/2 session with a stream that never ends is destroyed at the deadline and counted', async (t) => {
  const started = deferred();
  const server = http2.createServer();
  server.on('stream', () => started.resolve());
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  t.after(() => client.destroy());
  const req = client.request({ ':path': '/' });
  req.on('error', () => {});
  await started.promise;
  const result = await shutdown(server, { timeout: 50 });
  assert.equal(result.timedOut, true);
  assert.deepEqual(result.forced, { requests: 1, connections: 1, sessions: 1, upgraded: 0 });
});

test('HTTP/2 over TLS with allowHTTP1: h2 sessions get GOAWAY and HTTP/1 requests get Connection: close', async (t) => {
  const { key, cert } = selfSignedCert(t);
  const release = deferred();
  const started = deferred();
  const server = http2.createSecureServer({ key, cert, allowHTTP1: true }, async (req, res) => {
    if (req.url === '/slow') {
      started.resolve();
      await release.promise;
    }
    res.end(`v${req.httpVersion}`);
  });
  track(server, { signals: false });
  const port = await listenLocal(t, server);

  const client = http2.connect(`https://localhost:${port}`, { ca: cert, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
  t.after(() => client.destroy());
  const h2 = client.request({ ':path': '/' });
  let h2body = '';
  h2.setEncoding('utf8').on('data', (c: string) => (h2body += c));
  await once(h2, 'end');
  assert.equal(h2body, 'v2.0');
  const goaway = once(client, 'goaway');

  const agent = new https.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const slow = httpsGet(port, agent, cert, '/slow');
  await started.promise;
  const done = shutdown(server, { idleGrace: 20, timeout: 60_000 });
  await goaway;
  release.resolve();
  const res = await slow;
  assert.equal(res.body, 'v1.1');
  assert.equal(res.connection, 'close');
  const result = await done;
  assert.equal(result.timedOut, false);
  assert.equal(result.drained.sessions, 1);
});

