/**
 * serve() without a name serves every inherited socket that no listen() claims by name when
 * it announces readiness (issue 20: a socket the master holds that nobody accepts on is a
 * black hole). Real worker processes on real held sockets; the test plays the master.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, holdListeningSocket } from './helpers/broker.js';
import { spawnFixture } from './helpers/child.js';

async function get(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return (await res.text()).trim();
}

function start(t: TestContext, mode?: string) {
  const sockets = ['http', 'admin', 'extra'].map(() => holdListeningSocket(t));
  const fixture = spawnFixture(t, 'serve-rest', {
    shim: true,
    extra: [...sockets.map((s) => s.fd), 'pipe', 'ipc'],
    env: { LISTEN_FDS: '3', LISTEN_FDNAMES: 'http:admin:extra', HITLESS_READY_FD: '6', HITLESS_CHANNEL: '1', ...(mode ? { MODE: mode } : {}) },
  });
  return { fixture, channel: new Channel(fixture.child), ports: sockets.map((s) => s.port) as [number, number, number] };
}

test('serve() without a name serves every socket no listen() claims by name; an admin server claiming its socket right after `await serve()` gets it; hello lists all three', async (t) => {
  const { fixture, channel, ports } = start(t);
  const [hello, listening] = await Promise.all([channel.next('hello'), fixture.next<{ admin: string }>('listening')]);
  assert.equal(listening.admin, 'ok');
  assert.deepEqual([...(hello.adopted as string[])].sort(), ['admin', 'extra', 'http']);
  const pid = fixture.child.pid;
  assert.deepEqual(await Promise.all(ports.map(get)), [`app ${pid}`, `admin ${pid}`, `app ${pid}`]);
  fixture.child.kill('SIGTERM');
  await fixture.next('stopped');
  assert.equal((await fixture.exited).code, 0, 'the relay does not keep the worker alive after the drain');
});

test('a listen() by name that comes after serve() announced readiness fails, saying serve() took the socket and how to order the calls', async (t) => {
  const { fixture } = start(t, 'late');
  const listening = await fixture.next<{ admin: string; code: string }>('listening');
  assert.equal(listening.code, 'ERR_LISTEN_FAILED');
  assert.match(listening.admin, /^hitless listen\(\): the inherited socket "admin" \(fd 4\) was already adopted by another server \(serve\(\) without a name serves every socket no listen\(\) claimed when it announced readiness\); call listen\(server, 'admin'\) before that, right after `await serve\(\)` at the latest, or give serve\(\) its own: serve\(app, \{ name: 'http' \}\)$/);
});
