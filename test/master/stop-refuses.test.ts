// A graceful stop: nothing accepts on the sockets any more, so new connections must be
// refused at once, not queued on the master's copy of the socket for the whole drain and
// reset when it exits (a client waited for nothing, a balancer could not retry elsewhere).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { fixture, startMaster, waitUntil } from '../helpers/master.js';
import { SAME_STOP_MS } from '../../src/lib/defaults.js';

/** 'refused' when nothing listens on the port; 'accepted' when a connection was made (it is closed again). */
function probe(port: number): Promise<'refused' | 'accepted'> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve('refused') : reject(err)));
  });
}

test('during a graceful stop new connections are refused while a request in flight finishes', { timeout: 120_000 }, async (t) => {
  const master = await startMaster(t, { command: [process.execPath, fixture('master/app.js')], workers: 2, args: ['--drain-timeout', '100s'] });
  const port = Number(master.address().split(':').pop());
  // The request in flight holds the stop open for as long as the test needs (it ends with the second SIGTERM).
  const slow = new Promise<{ status: number | undefined; body: string } | Error>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/slow?ms=90000&id=held', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += String(c)));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', resolve);
    }).on('error', resolve);
  });
  await master.waitStdout('slow-start held');
  master.child.kill('SIGTERM');
  const firstAt = performance.now();
  // Once the workers began draining they closed their copies; the master closed its own at the
  // stop: the port refuses. Before, it kept accepting into the master's queue until the master exited.
  await waitUntil(async () => (await probe(port)) === 'refused', 'the port refuses new connections during the stop', 60_000);
  assert.equal(master.child.exitCode, null, 'the master is still draining the request in flight');
  // The second one kills the workers; one within SAME_STOP_MS of the first would be the
  // same stop (signals.ts: Ctrl-C under npm reaches the master twice), so it waits that out.
  const wait = SAME_STOP_MS + 50 - (performance.now() - firstAt);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  master.child.kill('SIGTERM');
  await master.waitEvent((r) => /SIGTERM received again: killing workers now/.test(String(r.msg)));
  const ended = await slow;
  assert.ok(ended instanceof Error, 'the held request was cut by the forced stop');
  assert.deepEqual(await master.exited, { code: 0, signal: null });
});
