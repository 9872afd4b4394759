/**
 * The "had stopped listening" warning (a worker called shutdown(2) on a shared listening
 * socket; src/master/listener-watch.ts finds it, the supervisor keeps it): in the outcome of
 * the reload during which it was found and in status, until a later reload's generation
 * serves that listener again or the listener is no longer held (regression: it stayed in
 * `hitless status` for good, even for a listener removed from `listen`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import type { ListenerStatus } from '../../src/core/types.js';
import { FakeHost, fakeSpec, wellBehaved, type Behaviour } from './fake-host.js';

test('a stopped-listener warning stays in the reload outcome where it was found, and leaves status once a later generation serves the listener or the listener is removed', async () => {
  const host = new FakeHost();
  let held: ListenerStatus[] = [
    { name: 'http', address: '127.0.0.1:8080', fd: 10, inherited: false },
    { name: 'admin', address: '127.0.0.1:8081', fd: 11, inherited: false },
  ];
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec({ fds: [10, 11], fdNames: ['http', 'admin'] }), version: 'test', listeners: () => held });
  const alert = (listener: string, address: string, worker: string): void =>
    sup.listenerStopped({ listener, address, fd: 10, relistened: true, text: `listener "${listener}" (${address}) had stopped listening, found after worker ${worker} exited` });
  // Generation 1's workers shut both sockets at their stop; later generations do not.
  const shutsAtStop: Behaviour = (p) => {
    wellBehaved(p);
    p.prependListener('signal', () => {
      alert('http', '127.0.0.1:8080', `1.${p.slot}`);
      alert('admin', '127.0.0.1:8081', `1.${p.slot}`);
    });
  };
  host.behave = (gen) => (gen === 1 ? shutsAtStop : wellBehaved);
  const stopped = (warnings: string[] | undefined): string[] => (warnings ?? []).filter((w) => w.includes('had stopped listening'));
  await sup.start();

  const first = await sup.reload('test');
  assert.equal(first.ok, true);
  assert.deepEqual(stopped(first.warnings).map((w) => w.slice(0, 16)), ['listener "http" ', 'listener "admin"'], 'the reload that found them says so');
  assert.equal(stopped(sup.status().warnings).length, 2, 'status says so while generation 2 serves');

  // "admin" removed from listen (the master no longer holds it): its warning goes.
  held = held.filter((l) => l.name !== 'admin');
  assert.deepEqual(stopped(sup.status().warnings).map((w) => w.slice(0, 16)), ['listener "http" ']);
  // "http" kept its name but moved: the socket the warning was about is closed.
  held = [{ name: 'http', address: '127.0.0.1:9090', fd: 12, inherited: false }];
  assert.deepEqual(stopped(sup.status().warnings), []);
  held = [{ name: 'http', address: '127.0.0.1:8080', fd: 10, inherited: false }];
  assert.equal(stopped(sup.status().warnings).length, 1);

  // The next reload's generation serves "http" again, and its workers did nothing wrong.
  const second = await sup.reload('test');
  assert.equal(second.ok, true);
  assert.deepEqual(stopped(second.warnings), [], 'not repeated in a later reload\'s outcome');
  assert.deepEqual(stopped(sup.status().warnings), [], 'gone from status once a later generation serves the listener');

  // Found again while generation 3 serves (a worker of it exits): shown until the next reload.
  alert('http', '127.0.0.1:8080', '3.0');
  assert.equal(stopped(sup.status().warnings).length, 1);
  assert.equal((await sup.reload('test')).ok, true);
  assert.deepEqual(stopped(sup.status().warnings), []);
  await sup.stop();
});
