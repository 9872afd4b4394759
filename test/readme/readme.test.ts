// A new user's first hour, as README.md writes it (issue 19): the package packed from this
// repository, installed in a fresh `npm init -y` project (CommonJS) with only Node and npm,
// the "Ten lines" server started under `npx hitless start`, reloaded, scaled, stopped; then
// the same app detached, its logs, `list`, `check` and `startup`. Every command is taken
// from the README's marked blocks and run as written, with two substitutions: the test's
// own free port for 8080, and `npm pack --ignore-scripts` for the clone's `npm ci && npm
// pack` (the suite's own build is what gets packed; installing the repository's
// dependencies again is not the test's business). HOME is a temporary folder, so `~` in the
// commands lands there; npm's cache is the machine's, so the tarball's dependencies come
// from it when present (CI, which has the registry, fetches the rest).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../helpers/free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { list as listTar } from 'tar';
import { alive, root } from '../helpers/master.js';
import { needs, onPath } from '../helpers/tools.js';

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; scripts: Record<string, string> };

/** The fenced block right after `<!-- readme-test: <name> -->`. */
function block(name: string): string {
  const m = new RegExp(`<!-- readme-test: ${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\`\\n`).exec(readme);
  assert.ok(m, `README.md has no block marked readme-test: ${name}`);
  return m[1]!;
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');

/** The environment of a new user: only what a shell has, HOME in a temporary folder, npm's cache reused. */
function userEnv(home: string, cache: string): NodeJS.ProcessEnv {
  // npm test puts npm_* variables (prefixes, the package's own fields) in the environment;
  // a user's shell has none of them.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD'));
  return {
    ...env, HOME: home, XDG_RUNTIME_DIR: home, HITLESS_DEBUG: '',
    npm_config_cache: cache, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false',
    npm_config_update_notifier: 'false', npm_config_loglevel: 'warn', npm_config_logs_max: '0',
  };
}

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs `script` with sh in `cwd`, in its own process group (so cleanup can end everything it started). */
function sh(t: TestContext, script: string, cwd: string, env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<Run>; out: () => string } {
  const child = spawn('sh', ['-ec', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  t.after(() => {
    try {
      if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return { child, done, out: () => stdout + stderr };
}

/** Resolves once `text` appeared in what `run` printed; rejects if it ends first. */
function printed(run: ReturnType<typeof sh>, text: string | RegExp): Promise<void> {
  const seen = (): boolean => (typeof text === 'string' ? run.out().includes(text) : text.test(run.out()));
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!seen()) return;
      run.child.stdout!.off('data', check);
      run.child.stderr!.off('data', check);
      resolve();
    };
    run.child.stdout!.on('data', check);
    run.child.stderr!.on('data', check);
    void run.done.then((r) => (seen() ? resolve() : reject(new Error(`ended (${String(r.code ?? r.signal)}) before printing ${String(text)}:\n${r.stdout}\n${r.stderr}`))));
    check();
  });
}


/** Kills the workers a master logged (text log lines `worker spawn … pid=N`), for a test that failed half-way. */
function killLoggedWorkers(text: string): void {
  for (const m of text.matchAll(/event=worker-spawn .*pid=(\d+)/g)) {
    try {
      process.kill(-Number(m[1]), 'SIGKILL');
    } catch {
      // gone
    }
  }
}

test('the packed package: no install script, a LICENSE, only the build of src; README names its file', () => {
  for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) {
    assert.equal(pkg.scripts[script], undefined, `package.json must not have a "${script}" script: it would run in users' projects`);
  }
  assert.match(pkg.scripts.prepack ?? '', /npm run build/, 'the build happens before packing');
  assert.ok(existsSync(join(root, 'LICENSE')));
  assert.match(readFileSync(join(root, 'LICENSE'), 'utf8'), /^MIT License/);
  assert.ok(readme.includes(`hitless-${pkg.version}.tgz`), 'the README names the tarball npm pack writes');
});

test('README install and "Ten lines", as written: npm init -y project, tarball install, npx hitless start, reload, scale, stop; then detached, logs, list, check, startup',
  { timeout: 300_000 }, async (t) => {
    const home = realpathSync(mkdtempSync(join(tmpdir(), 'hitless-readme-')));
    t.after(() => rmSync(home, { recursive: true, force: true }));
    const cache = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).stdout.trim();
    const env = userEnv(home, cache);
    const app = join(home, 'myapp');
    const port = await freePort();
    const withPort = (line: string): string => line.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);

    // Install: pack (the clone's step), then the rest verbatim.
    const install = lines(block('install'));
    assert.match(install[0]!, /^npm ci && npm pack --pack-destination ~ /);
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', home], { cwd: root, env, encoding: 'utf8' });
    assert.equal(pack.status, 0, pack.stderr);
    const tarball = join(home, `hitless-${pkg.version}.tgz`);
    const listing: string[] = [];
    await listTar({ file: tarball, onReadEntry: (e) => void listing.push(e.path) });
    assert.ok(listing.includes('package/LICENSE'), 'the tarball carries the LICENSE');
    assert.ok(listing.includes('package/build/src/cli/main.js'));
    assert.ok(!listing.some((f) => f.startsWith('package/build/test/') || f.startsWith('package/src/')), 'only the build of src');
    const installed = await sh(t, install.slice(1).join('\n'), home, env).done;
    assert.equal(installed.code, 0, installed.stdout + installed.stderr);
    assert.doesNotMatch(installed.stdout + installed.stderr, /install-scripts|prepare/, 'no install script runs in the user\'s project');
    assert.equal((JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { type?: string }).type ?? 'commonjs', 'commonjs', 'npm init -y made a CommonJS project');
    const version = await sh(t, 'npx hitless --version', app, env).done;
    assert.equal(version.stdout, `${pkg.version}\n`, version.stderr);

    // Ten lines: server.js as written (CommonJS require of the ESM package).
    const server = block('server.js');
    assert.match(server, /^\/\/ server\.js\n/);
    writeFileSync(join(app, 'server.js'), server);

    // Foreground master; the second terminal's commands; stop.
    const [startLine] = lines(block('start'));
    const fg = sh(t, withPort(startLine!), app, env);
    t.after(() => killLoggedWorkers(fg.out()));
    await printed(fg, 'master ready');
    for (const line of lines(block('second terminal')).map(withPort)) {
      if (line.startsWith('curl ')) {
        if (onPath('curl')) {
          const r = await sh(t, line, app, env).done;
          assert.equal(r.stdout, 'hello\n', line);
        } else {
          assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello\n');
        }
        continue;
      }
      const r = await sh(t, line, app, env).done;
      assert.equal(r.code, 0, `${line}\n${r.stdout}\n${r.stderr}`);
      if (line.startsWith('npx hitless reload')) assert.match(r.stdout, /generation 2 is live/);
      if (line.startsWith('npx hitless status')) assert.match(r.stdout, /^generation {2}2$/m);
      if (line.startsWith('npx hitless scale')) assert.match(r.stdout, /generation 2 has 4 workers/);
    }
    const ended = await fg.done;
    assert.equal(ended.code, 0, ended.stdout + ended.stderr);
    assert.match(ended.stderr, /master stopped code=0/);

    // Detached: returns once serving; logs -f until Ctrl-C; list; stop.
    const detached = lines(block('detached')).map(withPort);
    const d = await sh(t, detached[0]!, app, env).done;
    assert.equal(d.code, 0, d.stdout + d.stderr);
    const pid = Number(/^hitless master pid (\d+) runs in the background/.exec(d.stdout)?.[1]);
    t.after(() => {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      killLoggedWorkers(existsSync(join(app, 'hitless.log')) ? readFileSync(join(app, 'hitless.log'), 'utf8') : '');
    });
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello\n');
    assert.match(detached[1]!, /^npx hitless logs -f\b/);
    const follow = sh(t, detached[1]!, app, env);
    await printed(follow, 'master ready');
    process.kill(-follow.child.pid!, 'SIGINT'); // Ctrl-C, to the whole foreground group as a terminal does
    await follow.done;
    const list = await sh(t, detached[2]!, app, env).done;
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${app} +${pid} +running +1 +2/2 +127\\.0\\.0\\.1:${port} `, 'm'));
    const stop = await sh(t, detached[3]!, app, env).done;
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    // `hitless stop` returns once the master is gone; its output file says how it ended.
    assert.match(readFileSync(join(app, 'hitless.log'), 'utf8'), /master stopped code=0\n$/);

    // check and startup, as written.
    for (const line of lines(block('check and startup')).map(withPort)) {
      const r = await sh(t, line, app, env).done;
      assert.equal(r.code, 0, `${line}\n${r.stdout}\n${r.stderr}`);
    }
    const unit = join(app, 'myapp.service');
    assert.ok(existsSync(unit), 'hitless startup wrote myapp.service, as the README says');
    if (!needs('systemd-analyze')) {
      const v = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stderr);
    } else {
      t.diagnostic(`systemd-analyze verify of the README's unit skipped: ${String(needs('systemd-analyze'))}`);
    }
  });
