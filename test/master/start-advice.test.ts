// The advice after a worker never got ready or died before it was (src/core/advice.ts): it
// fits what the worker showed (issue 19).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitAdvice, readyTimeoutAdvice } from '../../src/core/advice.js';
import { fakeConfig } from '../ops/fake-master.js';

const spec = (command: string[], preload = true, env: Record<string, string> = { PORT: '3000' }) =>
  ({ command, env, config: fakeConfig({ preload }), fds: [19] });

test('ready timeout: a preloaded app on another port is told so, not about READY=1', () => {
  const said = 'hitless: ERR_LISTEN_PORT_NOT_HELD the app listens on 127.0.0.1:3001, which the master does not hold (it holds http (127.0.0.1:3000)); start hitless with --listen 3001, or make the app listen on port 3000 (PORT is set to it)';
  const a = readyTimeoutAdvice(spec(['node', 'app.js']), undefined, ['booting', said]);
  assert.equal(a, 'it listens on another port than the one hitless holds (3000, in PORT): the app listens on 127.0.0.1:3001, which the master does not hold (it holds http (127.0.0.1:3000)); start hitless with --listen 3001, or make the app listen on port 3000 (PORT is set to it)');
});

test('ready timeout: a Node app that never listened, a program in a child process, a non-Node program, and the last status', () => {
  assert.match(readyTimeoutAdvice(spec(['node', 'app.js']), undefined, []),
    /^a Node app is ready once it listens on the port hitless holds \(3000; PORT is set to it\), or calls ready\(\) from hitless; it did neither in time .*--ready-timeout/);
  assert.match(readyTimeoutAdvice(spec(['./node_modules/.bin/next', 'start']), 'compiling', []), /a Node app is ready .*; its last status: "compiling";/);
  assert.match(readyTimeoutAdvice(spec(['npm', 'start']), undefined, ['hitless: ERR_LISTEN_IN_CHILD cannot listen …']), /runs in a child process of the command \(npm start, npx, yarn\)/);
  assert.equal(readyTimeoutAdvice(spec(['gunicorn', 'app:app']), 'loading', []),
    'write READY=1 to the fd in HITLESS_READY_FD once it serves, or, for a program that cannot, set readyAfter (--ready-after 2s); its last status: "loading"');
  assert.match(readyTimeoutAdvice(spec(['node', 'app.js'], false), undefined, []), /^write READY=1/, 'without the preload a Node app must announce itself');
  const some = 'listening on 1 of 2 sockets; waiting for the app to listen on listen1 (127.0.0.1:4000) (or remove that address from the master\'s "listen")';
  assert.equal(readyTimeoutAdvice(spec(['node', 'app.js']), some, []), `it did not listen on every socket hitless holds in time: ${some}`,
    'an app that listened on some held sockets is told which it did not, not that it did neither');
});

test('ready timeout: an app that adopted the socket with listen() and never called ready() is told to call ready(), not that it did neither', () => {
  const said = 'listening on the socket hitless holds, not ready yet (listener "http", fd 3): call ready() once it serves';
  const a = readyTimeoutAdvice(spec(['node', 'app.js']), said, []);
  assert.match(a, /^it listens on the socket hitless holds \(listen\(\) from hitless\) but never called ready\(\): call ready\(\) once it serves/);
  assert.doesNotMatch(a, /did neither/);
});

test('exit before ready: "address in use" in the output points at fd 3 / LISTEN_FDS; other exits get no advice', () => {
  const py = exitAdvice(spec(['python3', '-m', 'http.server', '3000']), ['OSError: [Errno 98] Address already in use']);
  assert.equal(py, 'it tried to bind a port itself and found it in use; the hitless master holds port 3000, so a worker must serve the listening socket it inherits as fd 3 ' +
    '(LISTEN_FDS=1, the systemd socket-activation protocol: sd_listen_fds(), gunicorn as the command itself with no --bind, …); a program that can only bind a port itself cannot share one with hitless');
  assert.match(exitAdvice(spec(['node', 'app.js'], false), ['Error: listen EADDRINUSE: address already in use 127.0.0.1:3000']) ?? '',
    /drop --no-preload \("preload": false\) so the preload adopts its listen\(port\)$/);
  assert.equal(exitAdvice(spec(['node', 'app.js']), ['Error: boom']), undefined);
});

test('exit before ready: a generation with no socket (empty listen) is told to give one, not "fds 3 to 2" (regression)', () => {
  const none = exitAdvice({ ...spec(['node', 'app.js'], true, {}), fds: [] }, ['Error: listen EADDRINUSE: address already in use :::3000']);
  assert.equal(none, 'it tried to bind a port itself and found it in use; the master gives this generation no listening socket (LISTEN_FDS=0: "listen" is empty), ' +
    'so each worker binds its own: give the master a "listen" address (--listen 127.0.0.1:8080) and the workers serve the socket they inherit');
  assert.match(exitAdvice({ ...spec(['gunicorn', 'app:app']), fds: [19, 20] }, ['OSError: [Errno 98] Address already in use']) ?? '', / as fds 3 to 4 \(LISTEN_FDS=2,/);
});

test('exit before ready: a preloaded Node app that found another port than the held one in use (a sibling worker bound it first) is told the port, not about fd 3', () => {
  const second = exitAdvice(spec(['node', 'app3000.js'], true, { PORT: '8080' }), ['Error: listen EADDRINUSE: address already in use :::3000', '    at Server.setupListenHandle']);
  assert.equal(second, 'it listens on port 3000, which the master does not hold (it holds port 8080; another worker of this generation may have bound 3000 outside hitless first): ' +
    'start hitless with --listen 3000, or make the app listen on port 8080 (PORT is set to it)');
  const tail = ['    at Module._load (node:internal/modules/cjs/loader:1091:12)', '  code: \'EADDRINUSE\',', '  errno: -98,', '  syscall: \'listen\',', '  address: \'::\',', '  port: 3000', '}'];
  assert.equal(exitAdvice(spec(['node', 'app3000.js'], true, { PORT: '8080' }), tail), second, 'the port from Node\'s error object when the first line was cut off');
  assert.match(exitAdvice(spec(['node', 'app.js'], true, { PORT: '3000' }), ['Error: listen EADDRINUSE: address already in use 127.0.0.1:3000']) ?? '',
    /^it tried to bind a port itself/, 'the held port itself in use: the fd-3 advice');
  assert.match(exitAdvice(spec(['node', 'app.js'], false, { PORT: '8080' }), ['Error: listen EADDRINUSE: address already in use :::3000']) ?? '',
    /drop --no-preload/, 'without the preload the fd-3 advice stays');
});

test('exit before ready: a node entry file that does not exist is named, with the workers\' folder; another missing module is not this case', () => {
  const esm = ["node:internal/modules/run_main:123", "Error [ERR_MODULE_NOT_FOUND]: Cannot find module '/srv/app/missing.js' imported from /srv/app/"];
  assert.equal(exitAdvice({ ...spec(['node', 'missing.js']), cwd: '/srv/app' }, esm),
    'its entry file /srv/app/missing.js does not exist (the workers\' folder is /srv/app): check "command" and "cwd" (`hitless check` warns about it)');
  const cjs = ["Error: Cannot find module '/srv/app/dist/main.js'", '    at Module._resolveFilename (node:internal/modules/cjs/loader:1145:15)'];
  assert.match(exitAdvice({ ...spec(['node', '--enable-source-maps', './dist/main.js']), cwd: '/srv/app' }, cjs) ?? '', /^its entry file \/srv\/app\/dist\/main\.js does not exist/);
  assert.equal(exitAdvice({ ...spec(['node', 'server.js']), cwd: '/srv/app' }, ["Error: Cannot find module 'express'"]), undefined, 'a dependency, not the entry');
  assert.equal(exitAdvice({ ...spec(['node', 'server.js']), cwd: '/srv/app' }, ["Error: Cannot find module '/srv/app/lib/server.js'"]), undefined, 'a file of the app with the same name');
});
