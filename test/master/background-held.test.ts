/**
 * What an old generation drained in the background still holds, as `hitless reload` and
 * `hitless status` say it, with the real master and the in-app library: a worker whose HTTP
 * requests are still in flight when `drain.reloadWait` passes reports them (its traffic
 * figures go on during the drain), so it is never "not reporting".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawConnection } from '../helpers/http.js';
import { fixture, startMaster, waitUntil } from '../helpers/master.js';
import { drainConfig } from '../websocket/clients.js';

test('regression (h15 F2): a library worker gone to the background at drain.reloadWait is listed with its requests in flight and why, its deadline in UTC, never as "not reporting"', async (t) => {
  const master = await startMaster(t, {
    command: [process.execPath, fixture('master/app.js')],
    workers: 1,
    env: { SHUTDOWN_TIMEOUT_MS: '60000' },
    args: ['--drain-timeout', '60s', '--config', drainConfig(t, { reloadWait: '1s' })],
  });
  const [host, port] = master.address().split(':') as [string, string];
  for (let i = 0; i < 2; i++) {
    const conn = await RawConnection.connect(Number(port), host);
    t.after(() => conn.destroy());
    conn.send('GET', '/slow?ms=60000'); // answered long after the test ended (the master's cleanup kills the worker)
  }
  await master.waitStdout('slow-start', 2);

  const reload = await master.cli(['reload']);
  assert.equal(reload.code, 0, reload.stderr);
  t.diagnostic(reload.stdout.split('\n').find((l) => l.includes('background')) ?? '');
  // What it held at that moment is its last traffic report (every second): the requests, or
  // the connections of a report sent just before they began.
  assert.match(reload.stdout, /generation 1 drains on in the background \(drain\.reloadWait 1 s reached\): 1 worker( holding 2 (requests in flight|connections open))?, until \d\d:\d\d:\d\d UTC at most \(in \d/);

  await waitUntil(async () => ((await master.status()).draining as { requests: number }[] | undefined)?.[0]?.requests === 2, 'status counts the 2 requests in flight');
  const status = await master.cli(['status']);
  assert.equal(status.code, 0, status.stderr);
  t.diagnostic(status.stdout.split('\n').find((l) => l.startsWith('draining')) ?? '');
  assert.match(status.stdout, /draining +generation 1 \(background, drain\.reloadWait 1 s reached\): 1 worker, 2 requests in flight, SIGKILL in /);
  assert.doesNotMatch(status.stdout, /not reporting|not saying/);
});
