// Issue 11 end to end: a reload applies the edited hitless.json. Real master started from
// a config file through the CLI, real workers, real sockets, HTTP load on the serving
// address while the file is edited and reloaded (or scaled): zero failed requests.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cli, fixture, runCli, startMaster, trackMaster, waitUntil, type MasterProcess } from '../helpers/master.js';
import { RawConnection } from '../helpers/http.js';
import { startLoad } from '../helpers/load.js';
import { freePort } from '../helpers/free-port.js';
import { openClients } from '../websocket/clients.js';

const APP = ['node', fixture('master/every-socket.js')];

interface FileMaster {
  master: MasterProcess;
  dir: string;
  /** Rewrites hitless.json (runDir and logFormat are kept). */
  write(config: Record<string, unknown>): void;
}

/** `hitless start` with no flags in a folder holding hitless.json: everything comes from the file. */
async function startFromFile(t: TestContext, config: Record<string, unknown>): Promise<FileMaster> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-reconf-'));
  const write = (c: Record<string, unknown>): void => {
    writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ runDir: 'run', logFormat: 'json', ...c }, null, 2));
  };
  write(config);
  const child = spawn(process.execPath, [cli, 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, join(dir, 'run'), dir);
  await master.waitEvent('master-ready');
  return { master, dir, write };
}

/** The load of these tests, behind one function so the load client can change. */
function startHttpLoad(t: TestContext, url: string): { stop(): Promise<{ requests: number; failed: number; detail: string }> } {
  const run = startLoad(t, { url, connections: 20 });
  return {
    async stop() {
      const r = await run.stop();
      return { requests: r.requests, failed: r.failed, detail: r.raw };
    },
  };
}

function get(target: string | { socketPath: string }, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const options: http.RequestOptions = typeof target === 'string'
      ? { host: new URL(target).hostname, port: new URL(target).port, path, agent: false }
      : { socketPath: target.socketPath, path, agent: false };
    http.get(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body.trim()));
    }).on('error', reject);
  });
}

/** ECONNREFUSED / ENOENT, or true when something accepted the connection. */
function connects(target: number | string): Promise<true | string> {
  return new Promise((resolve) => {
    const s = typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect(target);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

async function reloadOk(master: MasterProcess): Promise<string> {
  const r = await master.cli(['reload']);
  assert.equal(r.code, 0, `hitless reload failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function serving(master: MasterProcess): Promise<{ generation: number; workers: number }> {
  const st = await master.status();
  const live = st.workers.filter((w) => w.generation === st.generation && w.state === 'ready');
  assert.equal(live.length, st.workers.length, `only the serving generation's workers should be left: ${JSON.stringify(st.workers)}`);
  return { generation: st.generation, workers: live.length };
}

test('workers 2 → 3 by editing the file and reloading, 3 → 1 by hitless scale, under load: zero failed requests; the scale lasts until the file\'s workers changes', { timeout: 450_000 }, async (t) => {
  const base = { command: APP, listen: ['127.0.0.1:0'] };
  const { master, write } = await startFromFile(t, { ...base, workers: 2 });
  const load = startHttpLoad(t, master.url('/'));

  write({ ...base, workers: 3 });
  let out = await reloadOk(master);
  assert.match(out, /^reload: configuration changes:\n {2}workers: 2 → 3\nreload: spawning generation 2/m);
  assert.deepEqual(await serving(master), { generation: 2, workers: 3 });

  const scaled = await master.cli(['scale', '1']);
  assert.equal(scaled.code, 0, scaled.stderr);
  assert.match(scaled.stdout, /scale: generation 2: draining 2 workers \(3 → 1\)/);
  assert.match(scaled.stdout, /scale: done in .*, generation 2 has 1 worker\n$/);
  assert.deepEqual(await serving(master), { generation: 2, workers: 1 });

  out = await reloadOk(master);
  assert.match(out, /reload: no configuration change\nreload: note: workers: keeping 1 from `hitless scale` \(the configuration still says 3\)/);
  assert.deepEqual(await serving(master), { generation: 3, workers: 1 });

  write({ ...base, workers: 2 });
  out = await reloadOk(master);
  assert.match(out, / {2}workers: 1 → 2\n/);
  assert.match(out, /the override ends/);
  assert.deepEqual(await serving(master), { generation: 4, workers: 2 });

  const result = await load.stop();
  t.diagnostic(`load: ${result.requests} requests, ${result.failed} failed`);
  assert.ok(result.requests > 500, `too little load to mean anything:\n${result.detail}`);
  assert.equal(result.failed, 0, `failed requests:\n${result.detail}`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('an env change in the file reaches the new workers on SIGHUP; the diff and the log never show the value', { timeout: 300_000 }, async (t) => {
  const base = { command: APP, listen: ['127.0.0.1:0'], workers: 2 };
  const { master, write } = await startFromFile(t, { ...base, env: { GREETING: 'hello' } });
  const load = startHttpLoad(t, master.url('/'));
  assert.equal(await get(master.url('/'), '/env?name=GREETING'), 'hello');

  write({ ...base, env: { GREETING: 'bonjour-s3cret', ADDED: 'x' } });
  const from = master.records.length;
  master.child.kill('SIGHUP');
  const done = await master.waitEvent('reload-done', from);
  assert.equal(done.msg, 'reload done', JSON.stringify(done));
  assert.equal(await get(master.url('/'), '/env?name=GREETING'), 'bonjour-s3cret');
  assert.equal(await get(master.url('/'), '/env?name=ADDED'), 'x');
  const announced = master.records.slice(from).find((r) => r.event === 'reload-config');
  assert.deepEqual(announced?.changes, [
    { key: 'env.GREETING', from: '(hidden)', to: '(hidden)' },
    { key: 'env.ADDED', from: null, to: '(hidden)' },
  ]);
  assert.ok(!master.stderr.includes('s3cret'), 'an env value reached the master log');

  const result = await load.stop();
  t.diagnostic(`load: ${result.requests} requests, ${result.failed} failed`);
  assert.equal(result.failed, 0, `failed requests:\n${result.detail}`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a listen address added by a reload serves after it; removed by the next, it refuses connections once drained (unix socket file unlinked); load on the kept address: zero failed', { timeout: 300_000 }, async (t) => {
  const { master, dir, write } = await startFromFile(t, { command: APP, listen: ['127.0.0.1:0'], workers: 2 });
  const load = startHttpLoad(t, master.url('/'));
  const sock = join(dir, 'extra.sock');
  write({ command: APP, listen: ['127.0.0.1:0', 'admin=127.0.0.1:0', `sock=unix:${sock}`], workers: 2 });
  const out = await reloadOk(master);
  assert.match(out, / {2}listen\.admin: added 127\.0\.0\.1:0\n {2}listen\.sock: added unix:.*extra\.sock\n/);
  const st = await master.status();
  const listeners = st.listeners as { name: string; address: string }[];
  assert.deepEqual(listeners.map((l) => l.name), ['http', 'admin', 'sock']);
  const admin = listeners.find((l) => l.name === 'admin')!.address;
  assert.equal(await get(`http://${admin}/`), 'admin 2');
  assert.equal(await get({ socketPath: sock }), 'sock 2');
  assert.equal(await get(master.url('/')), 'http 2');

  write({ command: APP, listen: ['127.0.0.1:0'], workers: 2 });
  const removed = await reloadOk(master);
  assert.match(removed, / {2}listen\.admin: removed \(was 127\.0\.0\.1:0\)\n {2}listen\.sock: removed/);
  assert.equal(await connects(Number(admin.split(':')[1])), 'ECONNREFUSED');
  assert.equal(existsSync(sock), false, 'the removed unix socket file is unlinked');
  assert.equal(await get(master.url('/')), 'http 3');

  const result = await load.stop();
  t.diagnostic(`load: ${result.requests} requests, ${result.failed} failed`);
  assert.ok(result.requests > 500, result.detail);
  assert.equal(result.failed, 0, `failed requests:\n${result.detail}`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a kept-alive connection to an address a reload removes stays with its old worker, which closes it, even when serve() relays that socket: the new generation never serves it', { timeout: 300_000 }, async (t) => {
  // serve() without a name serves the admin socket through a relay of its http server; the
  // connection must go to the master as "admin", which no worker of the new generation takes.
  const app = ['node', fixture('master/app.js')];
  const { master, write } = await startFromFile(t, { command: app, listen: ['127.0.0.1:0', 'admin=127.0.0.1:0'], workers: 1, env: { KEEP_ALIVE_MS: '60000' } });
  const adminPort = Number(master.address('admin').split(':').pop());
  const admin = await RawConnection.connect(adminPort);
  const kept = await RawConnection.connect(Number(master.address('http').split(':').pop()));
  t.after(() => {
    admin.destroy();
    kept.destroy();
  });
  assert.equal((await admin.request('GET', '/')).body, 'hello from generation 1\n');
  assert.equal((await kept.request('GET', '/')).body, 'hello from generation 1\n');

  write({ command: app, listen: ['127.0.0.1:0'], workers: 1, env: { KEEP_ALIVE_MS: '60000' } });
  assert.match(await reloadOk(master), / {2}listen\.admin: removed/);
  assert.equal((await kept.request('GET', '/')).body, 'hello from generation 2\n', 'the kept address\'s connection was handed over');
  // The old worker may still be in its idle grace: it answers (and closes), or has closed.
  const late = await admin.request('GET', '/').catch((err: Error) => err);
  if (!(late instanceof Error)) {
    assert.equal(late.body, 'hello from generation 1\n', 'the removed address is not served by the new generation');
    assert.equal(late.headers.connection, 'close');
  }
  assert.equal((await admin.closed).error, undefined, 'closed cleanly by its old worker');
  assert.equal(await connects(adminPort), 'ECONNREFUSED');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a listener that keeps its name and changes address: the old address refuses new connections, and its kept-alive connections are handed to the new generation, which serves that name', { timeout: 300_000 }, async (t) => {
  const app = ['node', fixture('master/app.js')];
  const { master, write } = await startFromFile(t, { command: app, listen: ['127.0.0.1:0'], workers: 1, env: { KEEP_ALIVE_MS: '60000' } });
  const oldPort = Number(master.address('http').split(':').pop());
  const kept = await RawConnection.connect(oldPort);
  t.after(() => kept.destroy());
  assert.equal((await kept.request('GET', '/')).body, 'hello from generation 1\n');

  const newPort = await freePort();
  write({ command: app, listen: [`127.0.0.1:${newPort}`], workers: 1, env: { KEEP_ALIVE_MS: '60000' } });
  assert.match(await reloadOk(master), new RegExp(` {2}listen\\.http: 127\\.0\\.0\\.1:0 → 127\\.0\\.0\\.1:${newPort}\\n`));
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.equal(drained.handedOver, 1, JSON.stringify(drained));
  const again = await kept.request('GET', '/');
  assert.equal(again.body, 'hello from generation 2\n', 'the connection that came on the old address is served by the new generation');
  assert.notEqual(again.headers.connection, 'close');
  assert.equal(await connects(oldPort), 'ECONNREFUSED', 'the old address is closed');
  assert.equal(await get(`http://127.0.0.1:${newPort}/`), 'hello from generation 2');
  kept.destroy();
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('an address a reload removes refuses new connections once the new generation serves, while the old one still drains a request on it (it queued them until the drain ended, then reset them)', { timeout: 300_000 }, async (t) => {
  const app = ['node', fixture('master/app.js')];
  // The old worker's own deadline as long as the master's: the request below is drained, not cut, for as long as the test needs.
  // And the reload waits for it (no background drain within the test): it is not done before the end.
  const env = { SHUTDOWN_TIMEOUT_MS: '120000' };
  const drain = { reloadWait: '110s' };
  const { master, write } = await startFromFile(t, { command: app, listen: ['127.0.0.1:0', 'admin=127.0.0.1:0'], workers: 1, drainTimeout: '120s', drain, env });
  const adminPort = Number(master.address('admin').split(':').pop());
  // A request in flight on the address to remove, which the old generation drains.
  let slowEnded = false;
  const slow = new Promise<string>((resolve) => {
    const end = (how: string): void => {
      slowEnded = true;
      resolve(how);
    };
    http.get({ host: '127.0.0.1', port: adminPort, path: '/slow?ms=100000&id=held', agent: false }, (res) => {
      res.resume();
      res.on('end', () => end('answered'));
      res.on('error', () => end('cut'));
    }).on('error', () => end('cut'));
  });
  await master.waitStdout('slow-start held');
  write({ command: app, listen: ['127.0.0.1:0'], workers: 1, drainTimeout: '120s', drain, env });
  const reload = master.cli(['reload']);
  await master.waitEvent((r) => r.event === 'reload-ready' && r.generation === 2);
  await waitUntil(async () => (await connects(adminPort)) === 'ECONNREFUSED', 'the removed address refuses new connections', 60_000);
  assert.equal(slowEnded, false, 'refused while the old generation still drains its request (not only once it ended)');
  assert.equal(master.events('reload-done').length, 0, 'refused before the reload is done (it closed the address only then)');
  // The kept address serves the new generation meanwhile.
  assert.equal(await get(master.url('/')), 'hello from generation 2');
  // Done: a forced stop ends the held request and the reload still waiting for its drain.
  const stopped = await master.cli(['stop', '--force']);
  assert.equal(stopped.code, 0, stopped.stderr);
  await Promise.all([slow, reload, master.exited]);
});

test('a WebSocket to an address a reload removes stays with its old worker (served, then closed with 1001), like that address\'s HTTP connections; one on a kept address moves', { timeout: 300_000 }, async (t) => {
  const app = [process.execPath, fixture('websocket/chat.js')];
  const env = { WS_MOVE: '1', WS_SERVE: '1' };
  const { master, write } = await startFromFile(t, { command: app, listen: ['127.0.0.1:0', 'admin=127.0.0.1:0'], workers: 1, env });
  const port = (name: string): string => master.address(name).split(':').pop() ?? '';
  const [onAdmin] = await openClients(t, `ws://127.0.0.1:${port('admin')}/`, 1);
  const [onHttp] = await openClients(t, `ws://127.0.0.1:${port('http')}/`, 1);
  assert.equal((await onAdmin!.ask(1, { nick: 'a' })).generation, '1');
  assert.equal((await onHttp!.ask(1, { nick: 'h' })).generation, '1');

  write({ command: app, listen: ['127.0.0.1:0'], workers: 1, env });
  assert.match(await reloadOk(master), / {2}listen\.admin: removed/);
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.deepEqual([drained.webSockets, drained.returned, drained.lost], [1, 1, 0], JSON.stringify(drained));
  const moved = await onHttp!.ask(2);
  assert.deepEqual([moved.generation, moved.nick, moved.count], ['2', 'h', 2], 'the kept address\'s WebSocket moved with its state');
  assert.equal((await onAdmin!.closed).code, 1001, 'the removed address\'s WebSocket was closed by its old worker');
  assert.ok(onAdmin!.messages.every((m) => m.generation === '1'), 'never served by the new generation');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a metrics address in use refuses the reload (ERR_BIND, as at start); the endpoint stays where it was; a free one applies', { timeout: 120_000 }, async (t) => {
  const app = ['node', fixture('master/app.js')];
  const { master, write } = await startFromFile(t, { command: app, listen: ['127.0.0.1:0'], workers: 1, metrics: { listen: '127.0.0.1:0' } });
  const before = master.records.find((r) => r.msg === 'metrics serving')?.address as string | undefined;
  assert.ok(before, 'metrics served at start');
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const busy = `127.0.0.1:${(taken.address() as net.AddressInfo).port}`;
  write({ command: app, listen: ['127.0.0.1:0'], workers: 1, metrics: { listen: busy } });
  const r = await master.cli(['reload']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`^hitless: reload refused: config "metrics\\.listen": cannot listen on ${busy.replace(/\./g, '\\.')}: EADDRINUSE \\(another process listens there: stop it or choose another port\\) \\(metrics stay on 127\\.0\\.0\\.1:0\\) \\(ERR_BIND\\); generation 1 keeps serving\n$`));
  assert.equal(await connects(Number(before.split(':').pop())), true, 'the endpoint still answers where it was');
  write({ command: app, listen: ['127.0.0.1:0'], workers: 1, metrics: { listen: '127.0.0.1:0' } });
  assert.equal((await master.cli(['reload'])).code, 0);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('an invalid edit is refused with the key named (exit 2) and nothing starts, while the old generation keeps serving under load', { timeout: 300_000 }, async (t) => {
  const good = { command: APP, listen: ['127.0.0.1:0'], workers: 2 };
  const { master, dir, write } = await startFromFile(t, good);
  const load = startHttpLoad(t, master.url('/'));
  const spawnsBefore = master.events('worker-spawn').length;

  write({ ...good, workers: 'many' });
  let r = await master.cli(['reload']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, 'hitless: reload refused: "workers" in hitless.json: got "many"; expected a positive integer or "auto" (one per CPU), at most 1024 (ERR_CONFIG_INVALID); generation 1 keeps serving\n');
  r = await master.cli(['reload', '--json']);
  assert.equal(r.code, 2);
  const refused = JSON.parse(r.stdout) as { error: { code: string; message: string; problems: string[] } };
  assert.equal(refused.error.code, 'ERR_CONFIG_INVALID');
  // One problem is in `problems` too (before, only two or more were).
  assert.equal(refused.error.problems.length, 1);
  assert.match(refused.error.problems[0]!, /^"workers" in hitless\.json: got "many"/);
  write({ ...good, readyTimout: '5s' });
  r = await master.cli(['reload']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown key "readyTimout" in hitless\.json; did you mean "readyTimeout"\?/);
  // Two problems: the refusal names the first, the second gets a line (before: "(and 1 more problem)" only).
  write({ ...good, workers: 'many', readyTimout: '5s' });
  r = await master.cli(['reload']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^hitless: reload refused: "workers" in hitless\.json: got "many"; .*\(and 1 more problem\) \(ERR_CONFIG_INVALID\); generation 1 keeps serving\n {2}unknown key "readyTimout" in hitless\.json; did you mean "readyTimeout"\?\n$/);
  r = await master.cli(['reload', '--json']);
  assert.equal((JSON.parse(r.stdout) as { error: { problems: string[] } }).error.problems.length, 2);
  writeFileSync(join(dir, 'hitless.json'), '{\n  "command": ["node"],\n  "workers": 2,\n}\n');
  r = await master.cli(['reload']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /hitless\.json:4:1: not valid JSON.*\(ERR_CONFIG_PARSE\)/);

  assert.equal(master.events('worker-spawn').length, spawnsBefore, 'a refused reload starts no worker');
  assert.deepEqual(await serving(master), { generation: 1, workers: 2 });
  const st = await master.cli(['status']);
  assert.match(st.stdout, /^last reload refused: \S*hitless\.json:4:1: not valid JSON.*\(ERR_CONFIG_PARSE\); generation 1 kept serving \(hitless reload, [\d.]+ ?m?s ago\)$/m, 'status shows the refusal');
  // From the app folder, without --run-dir: the broken file (its runDir key unread) does not
  // hide the master; the client warns, finds it by its folder, and the master refuses the reload.
  const inFolder = await runCli(['status'], {}, dir);
  assert.equal(inFolder.code, 0, inFolder.stderr);
  assert.match(inFolder.stdout, /^generation\s+1$/m);
  assert.match(inFolder.stderr, /^hitless: warning: \S*hitless\.json:4:1: not valid JSON.* \(a running master keeps the configuration it has; fix the file before the next reload\)$/m);
  const reloadInFolder = await runCli(['reload'], {}, dir);
  assert.equal(reloadInFolder.code, 2, reloadInFolder.stderr);
  assert.match(reloadInFolder.stderr, /^hitless: reload refused: \S*hitless\.json:4:1: not valid JSON.*\(ERR_CONFIG_PARSE\); generation 1 keeps serving\n$/);
  assert.match((await master.cli(['status'])).stdout, /^requests +\d+ reloads asked for: .*, 7 refused$/m, 'every refused request is counted');
  write({ ...good, runDir: 'run', workers: 1 });
  assert.match(await reloadOk(master), /workers: 2 → 1/);
  assert.deepEqual(await serving(master), { generation: 2, workers: 1 });

  const result = await load.stop();
  t.diagnostic(`load: ${result.requests} requests, ${result.failed} failed`);
  assert.ok(result.requests > 500, result.detail);
  assert.equal(result.failed, 0, `failed requests:\n${result.detail}`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a master started with flags only ignores a hitless.json that appears later: one `configPath … NOT APPLIED` line, no other change or note, and an invalid file refuses nothing, by hitless reload and by SIGHUP (regression: h16 F8)', { timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: APP, workers: 1, args: ['--env', 'V=flag'] });
  const file = join(dirname(master.runDir), 'hitless.json');
  const notApplied = `reload: configuration changes:\n  configPath: added ${file} — NOT APPLIED: the master was started with flags only and reads no file; restart it in this folder (hitless stop, hitless start) to use the file\n`;
  // A valid file that would change workers, env and listen: none of it applies, none of it is shown.
  writeFileSync(file, JSON.stringify({ command: APP, listen: ['127.0.0.1:1'], workers: 2, env: { V: 'file' } }));
  let r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith(notApplied), r.stdout);
  assert.doesNotMatch(r.stdout, /workers|env\.V|listen|note/, 'nothing of the file is diffed or noted');
  assert.deepEqual(await serving(master), { generation: 2, workers: 1 });
  assert.equal(await get(master.url('/'), '/env?name=V'), 'flag');
  // An invalid one is not read at all: the reload runs, said the same way.
  writeFileSync(file, JSON.stringify({ command: APP, workers: 0 }));
  r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith(notApplied), r.stdout);
  assert.doesNotMatch(r.stdout, /refused|workers|note/);
  const from = master.records.length;
  master.child.kill('SIGHUP');
  const done = await master.waitEvent('reload-done', from);
  assert.equal(done.msg, 'reload done', JSON.stringify(done));
  const announced = master.records.slice(from).find((r) => r.event === 'reload-config');
  assert.deepEqual((announced?.changes as { key: string }[] | undefined)?.map((c) => c.key), ['configPath']);
  assert.deepEqual(announced?.notes, []);
  assert.deepEqual(await serving(master), { generation: 4, workers: 1 });
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a file value a start flag hides made invalid: the reload goes on and its note says a master started without the flag would refuse it, not to restart without it (regression: h16 F4)', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-reconf-'));
  const write = (c: Record<string, unknown>): void => writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: APP, listen: ['127.0.0.1:0'], runDir: 'run', logFormat: 'json', ...c }));
  write({ workers: 2 });
  const child = spawn(process.execPath, [cli, 'start', '--workers', '1'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, join(dir, 'run'), dir);
  await master.waitEvent('master-ready');
  write({ workers: 'x' });
  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^reload: note: workers: the start flag --workers overrides the file's "x", which is invalid: a master started without --workers would refuse it \("workers" in hitless\.json: got "x"; .*\); fix the file before dropping the flag$/m);
  assert.doesNotMatch(r.stdout, /restart the master without it/);
  assert.deepEqual(await serving(master), { generation: 2, workers: 1 });
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a reload to an empty listen list (no socket from systemd) is refused as `hitless start` refuses it (exit 2); nothing starts, the old generation keeps serving (regression: it went live with no socket)', { timeout: 300_000 }, async (t) => {
  const good = { command: APP, listen: ['127.0.0.1:0'], workers: 1 };
  const { master, write } = await startFromFile(t, good);
  const spawnsBefore = master.events('worker-spawn').length;
  write({ ...good, listen: [] });
  const r = await master.cli(['reload']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  // No --listen in the advice: `hitless reload` has no such flag (h12).
  assert.equal(r.stderr, 'hitless: reload refused: no listening address: add "listen": ["127.0.0.1:8080"] to hitless.json ' +
    '(an empty list is allowed only under systemd socket activation, with LISTEN_FDS set) (ERR_CONFIG_INVALID); generation 1 keeps serving\n');
  assert.equal(master.events('worker-spawn').length, spawnsBefore, 'a refused reload starts no worker');
  assert.ok((await get(master.url('/'))).length > 0, 'the old generation still answers');
  assert.deepEqual(await serving(master), { generation: 1, workers: 1 });
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a bind error on an added address refuses the reload with the one-line ERR_BIND message; nothing starts; the same edit applies once the port is free', { timeout: 300_000 }, async (t) => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const port = (busy.address() as net.AddressInfo).port;
  const { master, write } = await startFromFile(t, { command: APP, listen: ['127.0.0.1:0'], workers: 2 });
  const load = startHttpLoad(t, master.url('/'));
  const spawnsBefore = master.events('worker-spawn').length;

  write({ command: APP, listen: ['127.0.0.1:0', `extra=127.0.0.1:${port}`], workers: 2 });
  let r = await master.cli(['reload']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /listen\.extra: added 127\.0\.0\.1:\d+/);
  assert.equal(r.stderr, `hitless: reload refused: cannot listen on extra=127.0.0.1:${port}: EADDRINUSE (another process listens there: stop it or choose another port) (ERR_BIND); generation 1 keeps serving\n`);
  assert.equal(master.events('worker-spawn').length, spawnsBefore);
  assert.deepEqual(await serving(master), { generation: 1, workers: 2 });

  await new Promise<void>((resolve) => busy.close(() => resolve()));
  await reloadOk(master);
  assert.equal(await get(`http://127.0.0.1:${port}/`), 'extra 2');

  const result = await load.stop();
  t.diagnostic(`load: ${result.requests} requests, ${result.failed} failed`);
  assert.equal(result.failed, 0, `failed requests:\n${result.detail}`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('logs, metrics and watch settings added by a reload are applied once it is live; a watch on hitless.json then reloads on its own edits, listen address included', { timeout: 300_000 }, async (t) => {
  const base = { command: APP, workers: 1 };
  const { master, dir, write } = await startFromFile(t, { ...base, listen: ['127.0.0.1:0'] });
  const parts = {
    metrics: { listen: '127.0.0.1:0' },
    logs: { mode: 'file', dir: 'logs' },
    watch: { paths: ['hitless.json'], debounce: '200ms' },
  };
  write({ ...base, listen: ['127.0.0.1:0'], ...parts });
  let from = master.records.length;
  const out = await reloadOk(master);
  assert.match(out, / {2}logs\.mode: inherit → file\n/);
  assert.match(out, / {2}metrics\.listen: added 127\.0\.0\.1:0\n/);
  const applied = await master.waitEvent('reconfigured', from);
  assert.deepEqual(applied.parts, ['logs', 'metrics', 'watch']);
  assert.deepEqual(applied.errors, []);

  const metrics = await master.waitEvent((r) => r.msg === 'metrics serving', from);
  assert.match(await get(`http://${String(metrics.address)}`, '/metrics'), /^hitless_generation 2$/m);
  await get(master.url('/'), '/say?text=to-the-log-file');
  const logFile = join(dir, 'logs', 'workers.log');
  await waitUntil(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('to-the-log-file'), 'the worker line reaches the log file');
  assert.ok(!master.stdout.includes('to-the-log-file'), 'worker output still went to the master stdout');

  await master.waitEvent((r) => r.msg === 'watch: watching', from);
  from = master.records.length;
  write({ ...base, listen: ['web=127.0.0.1:0'], logs: parts.logs, watch: parts.watch });
  const done = await master.waitEvent('reload-done', from);
  assert.equal(done.msg, 'reload done', JSON.stringify(done));
  assert.deepEqual((await master.waitEvent('reconfigured', from)).parts, ['metrics']);
  const st = await master.status();
  const listeners = st.listeners as { name: string; address: string }[];
  assert.deepEqual(listeners.map((l) => l.name), ['web']);
  assert.equal(await get(`http://${listeners[0]!.address}/`), 'web 3');
  assert.equal(await connects(Number(String(metrics.address).split(':')[1])), 'ECONNREFUSED', 'metrics removed from the file are off');
  assert.equal(await connects(Number(master.address().split(':')[1])), 'ECONNREFUSED', 'the replaced address is closed');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
