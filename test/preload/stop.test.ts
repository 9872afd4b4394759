/**
 * Graceful stop of apps that run under the preload and handle the stop signal themselves
 * (or not at all), through the real CLI. With hand-over (the default), a reload moves the
 * app's keep-alive connections to the new generation: the idle one at once, the one with
 * a request in flight once that request is answered (no `Connection: close`); without it,
 * the request in flight is answered with `Connection: close` and the idle connection is
 * closed cleanly by the server (FIN, never a reset). Either way the old worker exits with
 * the code its own handler asked for — even with PM2's documented
 * `server.close(); process.exit(0)`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alive, fixture, startMaster, waitUntil } from '../helpers/master.js';
import { RawConnection } from '../helpers/http.js';
import { freePort } from '../helpers/free-port.js';

async function start(t: import('node:test').TestContext, stop: string, args: string[] = []) {
  const port = await freePort();
  const admin = await freePort();
  const master = await startMaster(t, {
    command: [process.execPath, fixture('preload/own-handler.js')],
    listen: [`127.0.0.1:${port}`],
    env: { STOP: stop, ADMIN_PORT: String(admin) },
    args,
  });
  const release = async (): Promise<void> => {
    const r = await fetch(`http://127.0.0.1:${admin}/release`);
    assert.equal(await r.text(), 'released\n');
  };
  return { master, port, release };
}

/** A request in flight on one connection (GET /slow, held until release()) and an idle keep-alive connection that generation 1 answered. */
async function slowAndIdle(t: import('node:test').TestContext, master: Awaited<ReturnType<typeof start>>['master'], port: number) {
  const slow = await RawConnection.connect(port);
  t.after(() => slow.destroy());
  slow.send('GET', '/slow');
  await master.waitStdout('SLOW-STARTED 1');
  const idle = await RawConnection.connect(port);
  t.after(() => idle.destroy());
  const first = await idle.request('GET', '/');
  assert.deepEqual([first.status, first.headers['x-generation']], [200, '1']);
  return { slow, idle };
}

const styles: [string, number, string][] = [
  ['pm2', 0, 'server.close(); process.exit(0)'],
  ['callback', 143, 'server.close(() => process.exit(143))'],
  ['none', 0, 'no handler'],
];

for (const [style, code, what] of styles) {
  test(`an app whose SIGTERM handler is "${what}": a reload hands both keep-alive connections to the new generation once the in-flight request is answered`, { timeout: 60_000 }, async (t) => {
    const { master, port, release } = await start(t, style);
    const { slow, idle } = await slowAndIdle(t, master, port);

    const from = master.records.length;
    const reloading = master.reload();
    // The idle connection moves at once; the old worker keeps the busy one until it answers.
    await master.waitEvent((r) => r.event === 'worker-status' && r.generation === 1 && r.text === 'draining 1 connection', from);
    await release();
    const res = await slow.response();
    assert.deepEqual([res.status, res.body, res.headers.connection], [200, 'slow done\n', 'keep-alive'], 'answered by the old worker, connection kept');

    const r = await reloading;
    assert.equal(r.code, 0, r.stderr);
    const exit = await master.waitEvent((e) => e.event === 'worker-exit' && e.generation === 1);
    assert.deepEqual([exit.code, exit.signal, exit.planned], [code, null, true]);
    const drained = await master.waitEvent('reload-drained');
    assert.deepEqual([drained.handedOver, drained.lost, drained.forced], [2, 0, 0]);
    // Both connections, never closed, are served by generation 2 now.
    for (const conn of [idle, slow]) {
      const next = await conn.request('GET', '/');
      assert.deepEqual([next.status, next.headers['x-generation']], [200, '2']);
    }
    assert.deepEqual(await master.stop(), { code: 0, signal: null });
  });

  test(`an app whose SIGTERM handler is "${what}", hand-over off: a reload answers the in-flight request and resets no connection`, { timeout: 60_000 }, async (t) => {
    const { master, port, release } = await start(t, style, ['--no-handover']);
    const { slow, idle } = await slowAndIdle(t, master, port);

    const reloading = master.reload();
    // The server closes the idle keep-alive connection once the drain began (after its grace).
    assert.deepEqual(await idle.closed, { error: undefined, ended: true });
    await release();
    const res = await slow.response();
    assert.equal(res.status, 200);
    assert.equal(res.body, 'slow done\n');
    assert.equal(res.headers.connection, 'close', 'responses during the drain close their connection');
    assert.deepEqual(await slow.closed, { error: undefined, ended: true });

    const r = await reloading;
    assert.equal(r.code, 0, r.stderr);
    const exit = await master.waitEvent((e) => e.event === 'worker-exit' && e.generation === 1);
    assert.deepEqual([exit.code, exit.signal, exit.planned], [code, null, true]);
    assert.equal((await master.waitEvent('reload-drained')).forced, 0);
    assert.deepEqual(await master.stop(), { code: 0, signal: null });
  });
}

test('process.exit() called by the app while a request is in flight waits for that request, then exits with the code asked for', { timeout: 60_000 }, async (t) => {
  const { master, port, release } = await start(t, 'none');
  const slow = await RawConnection.connect(port);
  t.after(() => slow.destroy());
  slow.send('GET', '/slow');
  await master.waitStdout('SLOW-STARTED 1');
  const bye = await fetch(`http://127.0.0.1:${port}/exit`);
  assert.equal(await bye.text(), 'bye\n');
  await release();
  const res = await slow.response();
  assert.equal(res.body, 'slow done\n');
  assert.equal(res.headers.connection, 'close');
  const exit = await master.waitEvent((e) => e.event === 'worker-exit' && e.generation === 1);
  assert.deepEqual([exit.code, exit.signal], [3, null]);
});

test('a second stop signal ends the worker at once, even with a request in flight', { timeout: 60_000 }, async (t) => {
  const { master, port } = await start(t, 'pm2');
  const pid = Number((await master.waitEvent('worker-ready')).pid);
  const { slow, idle } = await slowAndIdle(t, master, port);
  process.kill(pid, 'SIGTERM');
  await idle.closed; // the drain began
  process.kill(pid, 'SIGTERM');
  const exit = await master.waitEvent((e) => e.event === 'worker-exit' && e.pid === pid);
  assert.deepEqual([exit.code, exit.signal], [143, null]);
  await assert.rejects(slow.response());
});

for (const [style, what] of [['none', 'no handler'], ['callback', 'server.close(() => process.exit(143))']] as const) {
  test(`master SIGKILL, app whose SIGTERM handler is "${what}": the parent-death signal, which comes twice, drains the request in flight (regression)`, { timeout: 60_000 }, async (t) => {
    const { master, port, release } = await start(t, style);
    const pid = Number((await master.waitEvent('worker-ready')).pid);
    const slow = await RawConnection.connect(port);
    t.after(() => slow.destroy());
    slow.send('GET', '/slow');
    await master.waitStdout('SLOW-STARTED 1');
    // Linux sends the parent-death signal at each re-parenting: to another thread of the
    // dying master, then to init (src/lib/orphan.ts). The second is not the operator's.
    process.kill(master.pid, 'SIGKILL');
    await master.exited;
    await release();
    const res = await slow.response();
    assert.deepEqual([res.status, res.body], [200, 'slow done\n']);
    await waitUntil(() => !alive(pid), 'the orphaned worker exits once drained', 10_000);
  });
}
