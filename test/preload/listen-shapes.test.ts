/**
 * Through the real `hitless` CLI: an app's own listen() in every argument shape, with
 * http, https, http2 (TLS and h2c) and net servers, adopts the socket the master holds;
 * a second server on an adopted port (Fastify's "localhost" pattern) succeeds without a
 * socket; listens on other ports and on port 0 are untouched; READY comes only once every
 * held socket was adopted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startMaster, type MasterProcess } from '../helpers/master.js';
import { selfSignedCert } from '../lib/helpers/tls.js';
import { freePort } from '../helpers/free-port.js';

const HELD = ['a', 'b', 'c', 'd', 'e', 'f', 'j'] as const;

function get(options: http.RequestOptions, secure = false): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).get({ ...options, agent: false, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

function h2get(url: string): Promise<Record<string, string | string[] | undefined>> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { rejectUnauthorized: false });
    session.on('error', reject);
    const req = session.request({ ':path': '/' });
    req.on('response', (headers) => {
      req.resume();
      req.on('end', () => {
        session.close();
        resolve(headers as Record<string, string>);
      });
    });
    req.on('error', reject);
  });
}

function netRead(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

async function shapes(master: MasterProcess, from: number): Promise<{ pid: number; [k: string]: unknown }> {
  // Generation `from + 1`'s line: its worker may print it after the reload that started it returned.
  await master.waitStdout('SHAPES ', from + 1);
  const lines = master.stdout.split('\n').filter((l) => l.startsWith('SHAPES '));
  return JSON.parse(lines[from]!.slice('SHAPES '.length)) as { pid: number };
}

test('an app listening in every shape on held ports adopts each socket; other ports and port 0 are untouched', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-shapes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { key, cert } = selfSignedCert(t);
  writeFileSync(join(dir, 'key.pem'), key);
  writeFileSync(join(dir, 'cert.pem'), cert);
  const ports: Record<string, number> = {};
  for (const name of HELD) ports[name] = await freePort();
  const free = await freePort();
  const unixPath = join(dir, 'g.sock');
  const master = await startMaster(t, {
    command: [process.execPath, fixture('preload/shapes.js')],
    listen: [...HELD.map((n) => `${n}=127.0.0.1:${ports[n]}`), `g=unix:${unixPath}`],
    env: { PORTS: JSON.stringify(ports), FREE_PORT: String(free), UNIX_PATH: unixPath, TLS_KEY: join(dir, 'key.pem'), TLS_CERT: join(dir, 'cert.pem') },
    waitReady: false,
  });
  // Every held socket but j is adopted: not ready, and the status says what is missing.
  const waiting = await master.waitEvent('worker-status');
  assert.match(String(waiting.text), new RegExp(`^listening on 7 of 8 sockets; waiting for the app to listen on j \\(127\\.0\\.0\\.1:${ports.j}\\) \\(or remove that address from the master's "listen"\\)$`));
  assert.equal(master.events('worker-ready').length, 0);
  // The first request to a makes the app listen on j: then, and only then, READY.
  const a = await get({ host: '127.0.0.1', port: ports.a });
  assert.equal(a.headers['x-shape'], 'a');
  await master.waitEvent('master-ready');
  const result = await shapes(master, 0);
  const pid = String(result.pid);
  assert.equal(a.headers['x-pid'], pid);

  for (const name of ['a', 'b', 'c']) {
    const r = await get({ host: '127.0.0.1', port: ports[name] });
    assert.equal(r.headers['x-shape'], name);
    assert.equal(r.headers['x-pid'], pid);
  }
  const c = result.c as { primary: net.AddressInfo; second: net.AddressInfo };
  assert.deepEqual(c.second, c.primary, 'the second server on an adopted port reports the socket it shares');
  assert.equal(c.primary.port, ports.c);
  const d = await get({ host: '127.0.0.1', port: ports.d }, true);
  assert.equal(d.headers['x-shape'], 'd');
  assert.equal((await h2get(`https://127.0.0.1:${ports.e}`))['x-shape'], 'e');
  assert.equal(await netRead(ports.f!), `f ${pid}\n`);
  assert.equal((await get({ socketPath: unixPath, path: '/' })).headers['x-shape'], 'g');
  assert.equal((await h2get(`http://127.0.0.1:${ports.j}`))['x-shape'], 'j');
  // Not held: the app's own sockets, served by the app.
  assert.equal((await get({ host: '127.0.0.1', port: free })).headers['x-shape'], 'h');
  const i = await get({ host: '127.0.0.1', port: result.i as number });
  assert.equal(i.headers['x-shape'], 'i');
  assert.notEqual(result.i, 0);

  // A reload: the old worker closes its own port first (drain), the new one adopts again.
  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  const next = await shapes(master, 1);
  assert.notEqual(next.pid, result.pid);
  assert.equal((await get({ host: '127.0.0.1', port: ports.a })).headers['x-pid'], String(next.pid));
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
