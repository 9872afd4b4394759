/**
 * The worker environment that carries the preload (src/master/preload-env.ts) and the
 * matching of listen() requests to held sockets (src/preload/held.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nodeOptionsWithImport, preloadEnv, PRELOAD_URL, preloadUrl } from '../../src/master/preload-env.js';
import { findHeld, listenRequest, parseAddress, type HeldSocket } from '../../src/preload/held.js';

test('NODE_OPTIONS gets --import of the preload appended, once, after what the user set', () => {
  const url = 'file:///opt/hitless/build/src/preload/index.js';
  assert.equal(nodeOptionsWithImport(undefined, url), `--import="${url}"`);
  assert.equal(nodeOptionsWithImport('  ', url), `--import="${url}"`);
  const once = nodeOptionsWithImport('--max-old-space-size=512', url);
  assert.equal(once, `--max-old-space-size=512 --import="${url}"`);
  assert.equal(nodeOptionsWithImport(once, url), once);
});

test('Node loads the preload from a folder whose name has spaces, quotes, # and %', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'hitless-preload-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'my app #1 100% "x"');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'mark.mjs');
  writeFileSync(file, "process.stdout.write('preloaded\\n');\n");
  const NODE_OPTIONS = nodeOptionsWithImport('--no-warnings', pathToFileURL(file).href);
  const r = spawnSync(process.execPath, ['-e', "console.log('main')"], { env: { ...process.env, NODE_OPTIONS }, encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'preloaded\nmain\n');
});

test('PRELOAD_URL names the built preload, which does nothing in a process without LISTEN_PID', () => {
  assert.ok(existsSync(fileURLToPath(PRELOAD_URL)), PRELOAD_URL);
  const code = "const s=require('node:http').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port>0);s.close()})";
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, NODE_OPTIONS: nodeOptionsWithImport(undefined, PRELOAD_URL) }, encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'true\n');
});

test('preloadEnv: NODE_OPTIONS and the held addresses when enabled, PORT from the first TCP listener unless set', () => {
  const listeners = [{ address: 'unix:/run/app.sock' }, { address: '127.0.0.1:3000' }, { address: '[::1]:3001' }];
  const on = preloadEnv({ NODE_OPTIONS: '--enable-source-maps' }, listeners, true);
  assert.equal(on.PORT, '3000');
  assert.equal(on.NODE_OPTIONS, `--enable-source-maps --import="${PRELOAD_URL}"`);
  assert.deepEqual(JSON.parse(on.HITLESS_LISTEN_ADDRS!), ['unix:/run/app.sock', '127.0.0.1:3000', '[::1]:3001']);
  assert.deepEqual(preloadEnv({}, listeners, false), { PORT: '3000' });
  assert.equal(preloadEnv({ PORT: '8080' }, listeners, true).PORT, undefined);
  assert.equal(preloadEnv({}, [{ address: 'fd:3' }], true).PORT, undefined);
});

test('regression (h29 N1): under pnpm, workers get the preload through the app\'s node_modules/hitless symlink, so they still start after pnpm prune removed the store folder of the version the master runs (ERR_MODULE_NOT_FOUND, a crash loop)', (t) => {
  const app = realpathSync(mkdtempSync(join(tmpdir(), 'hitless-preload-pnpm-')));
  t.after(() => rmSync(app, { recursive: true, force: true }));
  const store = (v: string): string => join(app, 'node_modules/.pnpm', `hitless@${v}`, 'node_modules/hitless');
  for (const v of ['0.1.0', '0.2.0']) {
    mkdirSync(join(store(v), 'build/src/preload'), { recursive: true });
    writeFileSync(join(store(v), 'package.json'), JSON.stringify({ name: 'hitless', version: v }));
    writeFileSync(join(store(v), 'build/src/preload/index.js'), `process.stdout.write('preload ${v}\\n');\n`);
  }
  // The master runs 0.1.0 from its store folder; `pnpm add` linked 0.2.0 since, and the prune removed 0.1.0.
  symlinkSync(store('0.2.0'), join(app, 'node_modules/hitless'));
  const own = pathToFileURL(join(store('0.1.0'), 'build/src/preload/index.js')).href;
  const url = preloadUrl(app, own);
  assert.equal(url, pathToFileURL(join(app, 'node_modules/hitless/build/src/preload/index.js')).href);
  rmSync(join(app, 'node_modules/.pnpm/hitless@0.1.0'), { recursive: true });
  assert.equal(preloadUrl(app, own), url, 'the same path once the folder is gone');
  const { NODE_OPTIONS } = preloadEnv({}, [{ address: '127.0.0.1:3000' }], true, url);
  const r = spawnSync(process.execPath, ['-e', "console.log('main')"], { cwd: app, env: { ...process.env, NODE_OPTIONS }, encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'preload 0.2.0\nmain\n');
  // Any other install (npm, global, a checkout) keeps the path as it is.
  assert.equal(preloadUrl(app, PRELOAD_URL), PRELOAD_URL);
});

test('addresses and listen() arguments are matched to held sockets by port, path or fd', () => {
  assert.deepEqual(parseAddress('127.0.0.1:3000'), { host: '127.0.0.1', port: 3000 });
  assert.deepEqual(parseAddress('[::]:80'), { host: '::', port: 80 });
  assert.deepEqual(parseAddress('unix:/run/a b.sock'), { path: '/run/a b.sock' });
  assert.deepEqual(parseAddress('fd:3'), {});
  const held: HeldSocket[] = [
    { fd: 3, name: 'v4', address: '127.0.0.1:3000', host: '127.0.0.1', port: 3000 },
    { fd: 4, name: 'v6', address: '[::1]:3000', host: '::1', port: 3000 },
    { fd: 5, name: 'sock', address: 'unix:/run/app.sock', path: '/run/app.sock' },
  ];
  const match = (...args: unknown[]): string | undefined => {
    const parsed = listenRequest(args);
    return parsed && findHeld(held, parsed.request)?.name;
  };
  assert.equal(match(3000), 'v4');
  assert.equal(match('3000', () => {}), 'v4');
  assert.equal(match(3000, '::1', 511, () => {}), 'v6');
  assert.equal(match({ port: 3000, host: '0.0.0.0' }), 'v4');
  assert.equal(match('/run/app.sock'), 'sock');
  assert.equal(match({ path: '/run/app.sock' }), 'sock');
  assert.equal(match({ fd: 4 }), 'v6');
  assert.equal(match(3001), undefined);
  assert.equal(match(0), undefined);
  assert.equal(match(), undefined);
  assert.equal(match(() => {}), undefined);
  assert.equal(match({ port: 0 }), undefined);
  held[0]!.server = {} as never;
  assert.equal(match(3000), 'v6', 'a socket not yet adopted is preferred when the host does not decide');
});
