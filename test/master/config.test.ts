import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, resolveRunDir, type ConfigFlags } from '../../src/config/load.js';
import { removeEmptyRunDir } from '../../src/config/rundir.js';
import { isHitlessError } from '../../src/errors.js';

function appDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const base = { command: ['node', 'server.js'], listen: ['127.0.0.1:0'] };

function load(dir: string, file: unknown, flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = {}) {
  writeFileSync(join(dir, 'hitless.json'), typeof file === 'string' ? file : JSON.stringify(file, null, 2));
  return loadConfig({ cwd: dir, flags, env });
}

function rejects(fn: () => unknown, code: string, ...parts: string[]): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isHitlessError(err), `expected a HitlessError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const part of parts) assert.ok(err.message.includes(part), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(part)}`);
    return err.message;
  }
  assert.fail('expected an error');
}

test('defaults: a minimal file gets every documented default', (t) => {
  const dir = appDir(t);
  const c = load(dir, base);
  assert.equal(c.appDir, dir);
  assert.equal(c.configPath, join(dir, 'hitless.json'));
  assert.equal(c.workers, 1);
  assert.equal(c.readyTimeout, 30_000);
  assert.equal(c.drainTimeout, 30_000);
  assert.equal(c.stayReady, 1_000);
  assert.equal(c.readyAfter, null);
  assert.equal(c.stopSignal, 'SIGTERM');
  assert.equal(c.strategy, 'all');
  assert.equal(c.cwd, dir);
  assert.deepEqual(c.restart, { backoffInitial: 100, backoffMax: 10_000, maxRestarts: 5, window: 60_000 });
  assert.deepEqual(c.release, { keep: 5, prepare: undefined });
  assert.deepEqual(c.logs, { mode: 'inherit', dir: join(dir, 'logs'), maxSize: 10 * 1024 * 1024, keep: 5, tag: false, timestamps: false });
  assert.equal(c.watch, undefined);
  assert.equal(c.fetch, undefined);
  assert.equal(c.metrics, undefined);
  assert.equal(c.logFormat, 'text');
});

test('units: durations, sizes and relative paths are normalised', (t) => {
  const dir = appDir(t);
  const c = load(dir, {
    ...base, readyTimeout: '1.5m', drainTimeout: 250, readyAfter: '2s', workers: 'auto',
    watch: { paths: ['dist'] }, logs: { maxSize: '1M', dir: 'var/log' }, cwd: 'app',
    fetch: { url: 'https://example.com/app.tgz', maxBytes: '1G', sha256: 'A'.repeat(64) },
  });
  assert.equal(c.readyTimeout, 90_000);
  assert.equal(c.drainTimeout, 250);
  assert.equal(c.readyAfter, 2000);
  assert.ok(c.workers >= 1);
  assert.deepEqual(c.watch, { paths: [join(dir, 'dist')], debounce: 500 });
  assert.equal(c.logs.maxSize, 1024 * 1024);
  assert.equal(c.logs.dir, join(dir, 'var/log'));
  assert.equal(c.cwd, join(dir, 'app'));
  assert.equal(c.fetch?.maxBytes, 1024 ** 3);
  assert.equal(c.fetch?.sha256, 'a'.repeat(64));
  assert.equal(c.fetch?.interval, 60_000);
});

test('flags override file keys, and --env merges over the file env', (t) => {
  const dir = appDir(t);
  const c = load(dir, { ...base, workers: 4, readyTimeout: '5s', env: { A: '1', B: '2' } }, {
    workers: '2', readyTimeout: '700ms', env: ['B=3', 'C=x=y'], listen: ['api=127.0.0.1:0'], command: ['python3', 'app.py'],
    stopSignal: 'SIGINT', strategy: 'rolling', logFormat: 'json',
  });
  assert.equal(c.workers, 2);
  assert.equal(c.readyTimeout, 700);
  assert.deepEqual(c.env, { A: '1', B: '3', C: 'x=y' });
  assert.deepEqual(c.listen.map((l) => l.name), ['api']);
  assert.deepEqual(c.command, ['python3', 'app.py']);
  assert.equal(c.stopSignal, 'SIGINT');
  assert.equal(c.strategy, 'rolling');
  assert.equal(c.logFormat, 'json');
});

test('a bad flag value names the flag, not the file key', (t) => {
  const dir = appDir(t);
  rejects(() => load(dir, base, { readyTimeout: 'soon' }), 'ERR_CONFIG_INVALID', '--ready-timeout', '"soon"', '"2s"');
  rejects(() => load(dir, base, { env: ['NOEQUALS'] }), 'ERR_CONFIG_INVALID', '--env', 'NOEQUALS', 'KEY=VALUE');
  rejects(() => load(dir, base, { stayReady: 'a while' }), 'ERR_CONFIG_INVALID', '--stay-ready', '"a while"', '"2s"');
});

test('stayReady: a duration from the file or --stay-ready (the flag wins); 0 turns the wait off', (t) => {
  const dir = appDir(t);
  assert.equal(load(dir, { ...base, stayReady: '10s' }).stayReady, 10_000);
  assert.equal(load(dir, { ...base, stayReady: '10s' }, { stayReady: '2.5s' }).stayReady, 2_500);
  assert.equal(load(dir, { ...base, stayReady: 0 }).stayReady, 0);
  assert.equal(load(dir, { ...base, stayReady: '0' }).stayReady, 0);
});

// Every key: a bad value gives ERR_CONFIG_INVALID with the key path, the value and the fix.
const bad: Array<[string, Record<string, unknown>, string[]]> = [
  ['command as a string', { command: 'node server.js' }, ['"command"', '"node server.js"', 'array of strings']],
  ['command empty', { command: [] }, ['"command"', '[]', 'non-empty array']],
  ['listen not an array', { listen: '8080' }, ['"listen"', '"8080"', 'array of addresses']],
  // h16 F7.6: was the union's generic "expected an address string … or an object {…}".
  ['listen object with a misspelt key', { listen: [{ name: 'admin', adress: '127.0.0.1:1' }] }, ['unknown key "listen[0].adress"', 'did you mean "listen[0].address"?']],
  ['workers 0', { workers: 0 }, ['"workers"', 'got 0', 'positive integer or "auto"']],
  ['workers fraction', { workers: 1.5 }, ['"workers"', '1.5', 'positive integer']],
  ['readyTimeout word', { readyTimeout: 'soon' }, ['"readyTimeout"', '"soon"', '"500ms", "2s"']],
  ['drainTimeout negative', { drainTimeout: -1 }, ['"drainTimeout"', '-1', 'milliseconds']],
  // Node's timers hold at most 2^31 - 1 ms: a longer one fires after 1 ms (a drain cut at once).
  ['drainTimeout 1000h', { drainTimeout: '1000h' }, ['"drainTimeout"', '"1000h"', 'at most "596h"', 'longest timer']],
  ['stayReady word', { stayReady: 'long' }, ['"stayReady"', '"long"', '0: no wait', '"500ms", "2s"']],
  ['stayReady negative', { stayReady: -5 }, ['"stayReady"', '-5', 'milliseconds']],
  ['stayReady 1000h', { stayReady: '1000h' }, ['"stayReady"', '"1000h"', 'at most "596h"']],
  ['stayReady bool', { stayReady: true }, ['"stayReady"', 'true', 'duration']],
  ['readyTimeout 0', { readyTimeout: 0 }, ['"readyTimeout"', 'got 0', 'more than 0']],
  ['fetch.interval 0', { fetch: { url: 'https://h/a.tgz', interval: '0s' } }, ['"fetch.interval"', '"0s"', 'more than 0']],
  // h16 F1: a 0 timeout made every poll give up at once ("no response for 0 ms").
  ['fetch.timeout 0', { fetch: { url: 'https://h/a.tgz', timeout: 0 } }, ['"fetch.timeout"', 'got 0', 'more than 0']],
  ['canary.duration 0', { canary: { duration: 0 } }, ['"canary.duration"', 'got 0', 'more than 0']],
  ['readyAfter bool', { readyAfter: true }, ['"readyAfter"', 'true', 'or null']],
  ['stopSignal TERM', { stopSignal: 'TERM' }, ['"stopSignal"', '"TERM"', 'rename it to "SIGTERM"']],
  ['stopSignal SIGKILL', { stopSignal: 'SIGKILL' }, ['"stopSignal"', '"SIGKILL"', 'cannot be caught', 'use "SIGTERM"']],
  ['stopSignal SIGUSR1', { stopSignal: 'SIGUSR1' }, ['"stopSignal"', 'debugger']],
  ['stopSignal unknown', { stopSignal: 'SIGNOPE' }, ['"stopSignal"', '"SIGNOPE"', 'signal name']],
  ['env number', { env: { PORT: 3000 } }, ['"env.PORT"', '3000', 'quote numbers']],
  ['env name with =', { env: { 'A=B': 'x' } }, ['"env"', '"A=B" is not a valid name (it contains "=")']],
  ['cwd empty', { cwd: '' }, ['"cwd"', '""', 'folder path']],
  ['strategy', { strategy: 'fast' }, ['"strategy"', '"fast"', '"all"', '"rolling"']],
  ['restart.backoffMax', { restart: { backoffMax: 'later' } }, ['"restart.backoffMax"', '"later"', 'duration']],
  ['restart.maxRestarts', { restart: { maxRestarts: -2 } }, ['"restart.maxRestarts"', '-2', 'whole number >= 0']],
  ['restart initial > max', { restart: { backoffInitial: '20s', backoffMax: '1s' } }, ['"restart.backoffInitial"', '"20s"', 'raise backoffMax']],
  ['restart max below the default initial', { restart: { backoffMax: '50ms' } }, ['"restart.backoffMax"', '"50ms"', 'below restart.backoffInitial (100 ms by default)']],
  ['runDir', { runDir: 5 }, ['"runDir"', '5', 'folder path']],
  ['pidFile', { pidFile: false }, ['"pidFile"', 'false', 'file path']],
  ['logFormat', { logFormat: 'xml' }, ['"logFormat"', '"xml"', '"text" or "json"']],
  ['release.keep', { release: { keep: 0 } }, ['"release.keep"', 'got 0', '>= 1']],
  ['release.prepare', { release: { prepare: 'npm ci' } }, ['"release.prepare"', '"npm ci"', '["npm", "ci"]']],
  ['watch.paths', { watch: { paths: [] } }, ['"watch.paths"', '[]', 'non-empty array']],
  ['watch.debounce', { watch: { paths: ['x'], debounce: 'often' } }, ['"watch.debounce"', '"often"', 'duration']],
  ['fetch.url', { fetch: { url: 'ftp://host/a.tgz' } }, ['"fetch.url"', '"ftp://host/a.tgz"', 'http://, https:// or file://']],
  ['fetch.sha256', { fetch: { url: 'https://h/a.tgz', sha256: 'abc' } }, ['"fetch.sha256"', '"abc"', '64 hexadecimal']],
  ['fetch both sums', { fetch: { url: 'https://h/a.tgz', sha256: 'a'.repeat(64), sha256Url: 'https://h/a.sha256' } }, ['"fetch.sha256Url"', 'not both']],
  ['fetch.maxBytes', { fetch: { url: 'https://h/a.tgz', maxBytes: 'huge' } }, ['"fetch.maxBytes"', '"huge"', '"10M"']],
  ['fetch.interval', { fetch: { url: 'https://h/a.tgz', interval: {} } }, ['"fetch.interval"', '{}', 'duration']],
  ['fetch.headers', { fetch: { url: 'https://h/a.tgz', headers: { 'X-A': 1 } } }, ['"fetch.headers.X-A"', '1', 'a string']],
  ['fetch.headers value fetch() cannot send (the docs\' "Bearer …" left in)', { fetch: { url: 'https://h/a.tgz', headers: { Authorization: 'Bearer tok…' } } },
    ['"fetch.headers.Authorization"', 'got (value hidden)', 'only Latin-1 characters without line breaks', '"…" (U+2026)']],
  ['user number', { user: 1000 }, ['"user"', '1000', 'as a string ("1000")']],
  ['group', { group: '' }, ['"group"', '""', 'group name']],
  ['logs.mode', { logs: { mode: 'syslog' } }, ['"logs.mode"', '"syslog"', '"inherit"', '"file"']],
  ['logs.maxSize', { logs: { maxSize: '10 parsecs' } }, ['"logs.maxSize"', '"10 parsecs"', '"10M"']],
  ['logs.maxSize 0 (a rotation at every line)', { logs: { maxSize: 0 } }, ['"logs.maxSize"', 'got 0', '"10M"']],
  ['logs.maxSize "0k"', { logs: { maxSize: '0k' } }, ['"logs.maxSize"', '"0k"', 'above 0 bytes']],
  ['logs.keep', { logs: { keep: 'all' } }, ['"logs.keep"', '"all"', 'whole number']],
  ['logs.tag', { logs: { tag: 'yes' } }, ['"logs.tag"', '"yes"', 'true or false']],
  ['metrics.listen', { metrics: { listen: 'example.com:9464' } }, ['"metrics.listen"', '"example.com:9464"', 'IP']],
  // The app's own address: the metrics bind failed at start with EADDRINUSE, while check said valid.
  ['metrics.listen on a listen address', { listen: ['127.0.0.1:8080'], metrics: { listen: '127.0.0.1:8080' } }, ['"metrics.listen"', '"127.0.0.1:8080"', 'the app\'s own listen entry "127.0.0.1:8080"', 'another port']],
  ['metrics.listen under a wildcard listen address', { listen: ['0.0.0.0:8080'], metrics: { listen: ':8080' } }, ['"metrics.listen"', 'listen entry "0.0.0.0:8080"']],
  ['workers above the bound', { workers: 1e9 }, ['"workers"', '1000000000', 'at most 1024']],
  ['canary.workers above the bound', { workers: 2, canary: { workers: 5000 } }, ['"canary.workers"', '5000', 'from 1 to 1024']],
  ['listen bad port', { listen: ['127.0.0.1:99999'] }, ['"listen[0]"', '"127.0.0.1:99999"', 'port 99999 is out of range']],
  // Bound twice, the second would fail with EADDRINUSE on "fd 4", naming neither entry.
  ['listen twice', { listen: ['127.0.0.1:8080', '127.0.0.1:8080'] }, ['"listen"', 'takes the same address as "127.0.0.1:8080"', 'remove one']],
  ['listen wildcard and one address', { listen: ['8080', 'api=127.0.0.1:8080'] }, ['"listen"', '"api=127.0.0.1:8080" takes the same address as "8080"']],
  ['listen dual stack and IPv4', { listen: ['[::]:8080', '127.0.0.1:8080'] }, ['"listen"', 'takes the same address as "[::]:8080"']],
  ['listen unix twice', { listen: ['unix:run/a.sock', 'b=unix:run/a.sock'] }, ['"listen"', 'takes the same address']],
];
for (const [title, patch, parts] of bad) {
  test(`bad value, ${title}: ERR_CONFIG_INVALID names key, value and fix`, (t) => {
    const dir = appDir(t);
    rejects(() => load(dir, { ...base, ...patch }), 'ERR_CONFIG_INVALID', ...parts);
  });
}

test('unknown keys suggest the closest valid key, at the top and nested', (t) => {
  const dir = appDir(t);
  rejects(() => load(dir, { ...base, readyTimout: 5 }), 'ERR_CONFIG_INVALID', 'unknown key "readyTimout"', 'did you mean "readyTimeout"?');
  rejects(() => load(dir, { ...base, restart: { backofMax: 5 } }), 'ERR_CONFIG_INVALID', '"restart.backofMax"', 'did you mean "restart.backoffMax"?');
  rejects(() => load(dir, { ...base, zzzzzzzz: 1 }), 'ERR_CONFIG_INVALID', 'unknown key "zzzzzzzz"', 'known keys:');
});

test('bad JSON: ERR_CONFIG_PARSE with the line and column of the mistake', (t) => {
  const dir = appDir(t);
  const msg = rejects(() => load(dir, '{\n  "command": ["node"],\n  "listen": ["8080",]\n}'), 'ERR_CONFIG_PARSE', 'hitless.json:3:21', 'unexpected "]"');
  assert.ok(!msg.includes('\n'));
  rejects(() => load(dir, '{"command": ["node"]'), 'ERR_CONFIG_PARSE', ':1:21', 'end of file');
  rejects(() => load(dir, '[1, 2]'), 'ERR_CONFIG_PARSE', 'expected a JSON object');
  rejects(() => load(dir, '{"command": ["node", "a.js"], "workers": 2,\n "workers": 3}'), 'ERR_CONFIG_PARSE', 'hitless.json:2:2', '"workers" is given twice');
});

test('config file: explicit missing --config is ERR_CONFIG_NOT_FOUND; appDir is the file folder', (t) => {
  const dir = appDir(t);
  rejects(() => loadConfig({ cwd: dir, flags: { config: 'nope.json' } }), 'ERR_CONFIG_NOT_FOUND', join(dir, 'nope.json'));
  writeFileSync(join(dir, 'other.json'), JSON.stringify(base));
  const c = loadConfig({ cwd: tmpdir(), flags: { config: join(dir, 'other.json') }, env: {} });
  assert.equal(c.appDir, dir);
  // Without a file, flags alone are enough and appDir is the working directory.
  const bare = appDir(t);
  const d = loadConfig({ cwd: bare, flags: { listen: ['0'], command: ['x'] }, env: {} });
  assert.equal(d.configPath, undefined);
  assert.equal(d.appDir, bare);
});

test('every problem is reported at once: the schema\'s, a bad --listen, a missing command, and those found after the schema', (t) => {
  const dir = appDir(t);
  const problemsOf = (fn: () => unknown): string[] => {
    try {
      fn();
    } catch (err) {
      assert.ok(isHitlessError(err, 'ERR_CONFIG_INVALID'), String(err));
      return err.details.problems as string[];
    }
    return assert.fail('expected an error');
  };
  // Before, a bad --listen was left out as long as the schema found something else.
  let problems = problemsOf(() => load(dir, { listen: ['127.0.0.1:0'], workers: 'many' }, { listen: ['127.0.0.1:99999'] }));
  assert.deepEqual(problems.map((p) => p.replace(/:.*/, '')), ['"workers" in hitless.json', 'no worker command', '--listen']);
  // After the schema: each check adds its problem instead of the first one ending the load.
  problems = problemsOf(() => load(dir, { ...base, listen: ['127.0.0.1:70000', '127.0.0.1:x'], fetch: { url: 'https://h/a.tgz', sha256: 'a'.repeat(64), sha256Url: 'https://h/a.sha256' }, workers: 1, canary: { workers: 2 } }));
  assert.deepEqual(problems.map((p) => p.replace(/:.*/, '')), ['"listen[0]" in hitless.json', '"listen[1]" in hitless.json', '"fetch.sha256Url" in hitless.json', '"canary.workers" in hitless.json']);
  rejects(() => load(dir, { ...base, listen: ['127.0.0.1:70000'], workers: 1, canary: { workers: 2 } }), 'ERR_CONFIG_INVALID', 'port 70000 is out of range', '(and 1 more problem)');
});

test('missing command and missing listen say how to add them', (t) => {
  const dir = appDir(t);
  rejects(() => load(dir, { listen: ['0'] }), 'ERR_CONFIG_INVALID', 'no worker command', '-- node server.js');
  rejects(() => load(dir, { command: ['x'] }), 'ERR_CONFIG_INVALID', 'no listening address', '--listen');
  rejects(() => load(dir, { command: ['x'], listen: [] }), 'ERR_CONFIG_INVALID', 'LISTEN_FDS');
  // Under systemd socket activation the sockets come from LISTEN_FDS.
  assert.deepEqual(load(dir, { command: ['x'], listen: [] }, {}, { LISTEN_FDS: '1' }).listen, []);
});

test('run dir: derived from the real path of the app folder, so a symlinked folder finds the same master', (t) => {
  const dir = appDir(t);
  const link = join(dir, 'link');
  symlinkSync(dir, link);
  const env = { XDG_RUNTIME_DIR: '/run/user/test' };
  const a = resolveRunDir(dir, undefined, env);
  assert.equal(resolveRunDir(link, undefined, env), a);
  assert.match(a, /^\/run\/user\/test\/hitless-\d+\/[0-9a-f]{12}$/);
  assert.equal(resolveRunDir(dir, './x', env), join(process.cwd(), 'x'));
  rejects(() => resolveRunDir(dir, '/' + 'd'.repeat(100), env), 'ERR_CONFIG_INVALID', 'longer than 100 bytes', '--run-dir');
  // A long default says where it came from (before: only "pass a shorter --run-dir").
  rejects(() => resolveRunDir(dir, undefined, { XDG_RUNTIME_DIR: '/' + 'x'.repeat(80) }), 'ERR_CONFIG_INVALID',
    '(the default, under XDG_RUNTIME_DIR) is longer than 100 bytes', 'or set a shorter XDG_RUNTIME_DIR');
});

test('flagOverrides: the file keys a start flag sets otherwise (paths compared resolved, env by variable, secrets not shown), none when they agree', (t) => {
  const dir = appDir(t);
  const c = load(dir, { ...base, workers: 2, cwd: '.', env: { A: '1', B: '2' } }, { workers: '1', cwd: dir, env: ['A=1', 'B=3'] });
  assert.deepEqual(c.flagOverrides, [{ key: 'workers', flag: '--workers', file: 2 }, { key: 'env.B', flag: '--env', file: '2' }]);
  assert.equal(load(dir, { ...base, workers: 2 }, { workers: '2' }).flagOverrides, undefined);
  assert.equal(load(dir, { ...base }, { workers: '2' }).flagOverrides, undefined, 'a flag for a key the file leaves out overrides nothing');
});

test('flagOverrides: a file value only a start flag hides is marked invalid with what a master started without that flag would say (regression: h16 F4)', (t) => {
  const dir = appDir(t);
  const c = load(dir, { ...base, workers: 'x', env: { A: 5, B: 'b' } }, { workers: '1', env: ['A=1', 'B=c'] });
  assert.equal(c.workers, 1);
  assert.deepEqual(c.flagOverrides, [
    { key: 'workers', flag: '--workers', file: 'x', invalid: '"workers" in hitless.json: got "x"; expected a positive integer or "auto" (one per CPU), at most 1024' },
    { key: 'env.A', flag: '--env', file: 5, invalid: '"env.A" in hitless.json: got 5; expected a string value (quote numbers: "3000")' },
    { key: 'env.B', flag: '--env', file: 'b' },
  ]);
  // A value valid alone but not with the rest of the file is invalid too: the start would fail all the same.
  const clash = load(dir, { ...base, workers: 1, canary: { workers: 2 } }, { workers: '4' });
  assert.match(clash.flagOverrides?.[0]?.invalid ?? '', /^"canary\.workers" in hitless\.json: got 2; it is more than workers \(1\)/);
});

test('a number beyond a double\'s range (1e400 in the file) is shown as such, not as null', (t) => {
  const dir = appDir(t);
  const message = rejects(() => load(dir, `{ "command": ["node", "server.js"], "listen": ["127.0.0.1:0"], "readyTimeout": 1e400 }`), 'ERR_CONFIG_INVALID', '"readyTimeout"', 'got a number too large to read (Infinity)');
  assert.ok(!message.includes('null'), message);
  rejects(() => load(dir, `{ "command": ["node", "server.js"], "listen": ["127.0.0.1:0"], "workers": -1e400 }`), 'ERR_CONFIG_INVALID', '"workers"', 'got minus a number too large to read (-Infinity)');
});

test('a size that is not one ("-1") is one problem, not two (the pattern, then "above 0" on the same value)', (t) => {
  const dir = appDir(t);
  try {
    load(dir, { ...base, logs: { maxSize: '-1' } });
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(isHitlessError(err));
    const problems = err.details.problems as string[];
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /"logs.maxSize" in .*: got "-1"; expected a size;/);
  }
});

test('removeEmptyRunDir (h16: a failed start left an empty run dir): an empty run dir and an empty compile cache in it go; anything kept there keeps both', (t) => {
  const dir = appDir(t);
  const runDir = join(dir, 'run');
  mkdirSync(join(runDir, 'compile-cache'), { recursive: true });
  removeEmptyRunDir(runDir, ['compile-cache']);
  assert.equal(existsSync(runDir), false);
  mkdirSync(join(runDir, 'compile-cache'), { recursive: true });
  writeFileSync(join(runDir, 'compile-cache', 'entry'), 'v8 code cache');
  removeEmptyRunDir(runDir, ['compile-cache']);
  assert.equal(existsSync(join(runDir, 'compile-cache', 'entry')), true);
});

test('regression (h18 N3): --no-config reads no hitless.json, even one in the folder (what an upgrade gives the new master of a flags-only master); with --config it is refused', (t) => {
  const dir = appDir(t);
  const c = load(dir, { ...base, workers: 2, env: { V: 'fromfile' } }, { noConfig: true, command: ['node', 'app.js'], listen: ['127.0.0.1:0'] });
  assert.equal(c.configPath, undefined);
  assert.equal(c.workers, 1);
  assert.deepEqual(c.command, ['node', 'app.js']);
  rejects(() => load(dir, base, { noConfig: true, config: 'hitless.json' }), 'ERR_CONFIG_INVALID', '--no-config and --config');
});
