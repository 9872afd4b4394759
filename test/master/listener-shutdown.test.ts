// A worker that calls shutdown(2) on the inherited listening socket at its stop shuts the one
// socket every generation shares (regression: the reload said success and the port refused
// connections until the master restarted). The master finds it when that worker exits, makes
// the socket listen again, and says so: an error in the log, a warning in the reload's
// outcome and in `hitless status`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { sourceFixture, startMaster } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';
import { freePort } from '../helpers/free-port.js';

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a worker that shuts the listening socket down: the master makes it listen again and says so in the log, the reload outcome and status', { skip: needs('python3'), timeout: 60_000 }, async (t) => {
  // A port asked for, as in production: a socket bound to port 0 loses its port at the
  // shutdown (listener-watch.ts; the unit test covers that report).
  const port = await freePort();
  const master = await startMaster(t, { command: ['python3', sourceFixture('master/shuts-listener.py')], listen: [`127.0.0.1:${port}`] });
  assert.equal(await get(master.url('/')), 'generation 1\n');
  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  const stopped = await master.waitEvent('listener-stopped');
  assert.equal(stopped.level, 'error');
  assert.equal(stopped.listener, 'http');
  assert.equal(stopped.relistened, true);
  assert.match(stopped.msg, /^listener "http" \(127\.0\.0\.1:\d+\) had stopped listening, found after worker 1\.0 \(pid \d+\) exited: .*shutdown\(2\).*hitless made it listen again/);
  // The old worker exits before the reload is declared done (it speaks no channel): the outcome carries it.
  assert.match(r.stdout, /reload: warning: listener "http" .* had stopped listening/);
  assert.equal(await get(master.url('/')), 'generation 2\n', 'the socket listens again');
  const status = await master.cli(['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  const warnings = (JSON.parse(status.stdout) as { warnings?: string[] }).warnings ?? [];
  assert.ok(warnings.some((w) => w.startsWith('listener "http"')), status.stdout);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
