// The remote side without ssh: the real scripts run by a local `sh -c` (the exec transport).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settleHealth } from '../../src/fleet/health.js';
import { checkHost } from '../../src/fleet/preflight.js';
import { formatEvent } from '../../src/fleet/report.js';
import { shellQuote } from '../../src/fleet/scripts.js';
import { upload } from '../../src/fleet/steps.js';
import { remoteArgv, remoteRunner } from '../../src/fleet/transport.js';
import type { FleetConfig, FleetHost } from '../../src/fleet/types.js';
import { REMOTE_HITLESS } from './cluster.js';

const local = remoteRunner({ exec: ['sh', '-c', '{script}'], sshArgs: [] });

async function scratch(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-remote-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function host(appDir: string, extra: Partial<FleetHost> = {}): FleetHost {
  return { name: 'local', address: 'localhost', user: undefined, port: undefined, identity: undefined, appDir, health: undefined, ...extra };
}

test('shellQuote: any string survives sh -c as one word', () => {
  for (const s of ["it's", '$(touch /tmp/x) `id` $HOME', 'a\nb', '"', "'", '', ' lead and trail ', '\\']) {
    assert.equal(execFileSync('sh', ['-c', `printf %s ${shellQuote(s)}`], { encoding: 'utf8' }), s);
  }
});

test('ssh argv: BatchMode, user, port, identity and extra args before the destination; the script is one sh -c word', () => {
  const argv = remoteArgv(host('/srv/app', { address: '10.0.0.2', user: 'deploy', port: 2222, identity: '/k' }), { exec: undefined, sshArgs: ['-o', 'ProxyJump=b'] }, "echo 'hi'");
  assert.deepEqual(argv, [
    'ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4',
    '-l', 'deploy', '-p', '2222', '-i', '/k', '-o', 'IdentitiesOnly=yes', '-o', 'ProxyJump=b', '--', '10.0.0.2', `sh -c 'echo '\\''hi'\\'''`,
  ]);
  assert.deepEqual(remoteArgv(host('/a', { name: 'web-1' }), { exec: ['kubectl', 'exec', '-i', 'pod/{name}', '--', 'sh', '-c', '{script}'], sshArgs: [] }, 'true'),
    ['kubectl', 'exec', '-i', 'pod/web-1', '--', 'sh', '-c', 'true']);
});

test('upload: the artifact arrives whole and is checked on arrival; a wrong checksum leaves nothing behind', async (t) => {
  const dir = await scratch(t);
  const artifact = join(dir, 'app.tgz');
  const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
  await writeFile(artifact, bytes);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const to = join(dir, 'uploads');
  await mkdir(to);

  assert.deepEqual(await upload(local, host(dir), artifact, join(to, 'a.tgz'), sha), { ok: true });
  assert.ok((await readFile(join(to, 'a.tgz'))).equals(bytes));

  const bad = await upload(local, host(dir), artifact, join(to, 'b.tgz'), '0'.repeat(64));
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.message : '', new RegExp(`^checksum mismatch on arrival: expected 0{64}, got ${sha}$`));
  assert.deepEqual(await readdir(to), ['a.tgz']);

  const unwritable = await upload(local, host(dir), artifact, join(dir, 'no-such-folder', 'c.tgz'), sha);
  assert.equal(unwritable.ok, false);
  assert.match(!unwritable.ok ? unwritable.message : '', /^upload to .*c\.tgz failed: cannot write/);
});

test('upload: without sha256sum on the host, node checks the sum', async (t) => {
  const dir = await scratch(t);
  const bin = join(dir, 'bin');
  await mkdir(bin);
  for (const tool of ['cat', 'cut', 'mv', 'rm']) await symlink(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
  await symlink(process.execPath, join(bin, 'node'));
  const noSha = remoteRunner({ exec: ['/usr/bin/env', `PATH=${bin}`, '/bin/sh', '-c', '{script}'], sshArgs: [] });
  const artifact = join(dir, 'app.tgz');
  await writeFile(artifact, 'bytes');
  const sha = createHash('sha256').update('bytes').digest('hex');
  assert.deepEqual(await upload(noSha, host(dir), artifact, join(dir, 'up.tgz'), sha), { ok: true });
  const bad = await upload(noSha, host(dir), artifact, join(dir, 'up2.tgz'), 'f'.repeat(64));
  assert.match(!bad.ok ? bad.message : '', new RegExp(`got ${sha}$`));
});

test('preflight script: a missing app folder, a missing hitless, no master, a live lock and a taken id are each named', async (t) => {
  const dir = await scratch(t);
  const config = (hitless: string): FleetConfig => ({
    hosts: [], hitless, sshArgs: [], exec: ['sh', '-c', '{script}'], batch: 1, settleMs: 0, uploadDir: dir, configPath: join(dir, 'x.json'),
  });
  const missing = await checkHost(host(join(dir, 'nope')), config(REMOTE_HITLESS), 'v2', local);
  assert.deepEqual(missing.problems, [`app folder ${join(dir, 'nope')} does not exist there; create it with its hitless.json, or fix deploy.appDir`]);

  const app = join(dir, 'app');
  await mkdir(join(app, 'releases', 'v2'), { recursive: true });
  await mkdir(join(app, 'releases', 'v1'));
  await symlink('releases/v1', join(app, 'current'));
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ runDir: 'run' }));
  const noHitless = await checkHost(host(app), config('hitless-is-not-installed-here'), 'v2', local);
  assert.equal(noHitless.problems.length, 1);
  assert.match(noHitless.problems[0] ?? '', new RegExp(`^hitless is not installed in ${app}, or \`hitless-is-not-installed-here\` cannot run it there \\(.*not found\\); install the hitless package in that app folder \\(docs/deploy\\.md\\), or set deploy\\.hitless to a command that runs it$`));

  await writeFile(join(app, 'releases', '.hitless-lock'), `${process.pid}\n`);
  const busy = await checkHost(host(app), config(REMOTE_HITLESS), 'v2', local);
  assert.equal(busy.current, 'v1');
  assert.deepEqual(busy.problems.map((p) => p.replace(/ \(no master is running at .*\); start it/, ' (no master is running at …); start it')), [
    `a release operation (pid ${process.pid}) is running in ${app}; wait for it to finish`,
    `no hitless master answers for ${app} (no master is running at …); start it (systemd, hitless start) first: a deploy reloads a running master`,
    `release v2 already exists in ${app}/releases; give another --id`,
  ]);
  assert.doesNotMatch(busy.problems[1] ?? '', /[{}]|"ok"/, 'hitless\'s own message, not its --json error object');

  // A retry of a failed deploy under the same id (h17 F3): v2, not current, recorded with the
  // artifact's content, is no obstacle (hitless release installs it afresh); other content is.
  await rm(join(app, 'releases', '.hitless-lock'));
  await writeFile(join(app, 'releases', '.hitless-state.json'), JSON.stringify({ releases: { v2: { id: 'v2', createdAt: 1, hash: 'c0ffee', source: 'v2.tgz' } } }));
  const artifact = (hash: string) => ({ name: 'v2.tgz', sha256: 'a'.repeat(64), contentHash: async () => hash });
  const idProblems = async (hash: string) => (await checkHost(host(app), config(REMOTE_HITLESS), 'v2', local, undefined, artifact(hash))).problems.filter((p) => p.includes('v2'));
  assert.deepEqual(await idProblems('c0ffee'), []);
  assert.deepEqual(await idProblems('beef'), [
    `release v2 already exists in ${app}/releases and holds other content than v2.tgz (sha256 aaaaaaaaaaaa): hitless release would refuse it there after the upload; give another --id`,
  ]);
});

test('preflight script: `npx hitless` in an app folder without the hitless package is named as hitless not installed there, not as "no master" with npm\'s log path', async (t) => {
  const dir = await scratch(t);
  const app = join(dir, 'app');
  await mkdir(app);
  // An app folder has its package.json: npx looks for the package there and goes no further
  // up (a package.json named hitless above the temp folder would otherwise be taken as it).
  await writeFile(join(app, 'package.json'), '{ "name": "app", "private": true }\n');
  // The real npx, offline and with an empty cache of its own: it fails as it does on a host
  // where the registry has no such package (npm error 404), without touching the network.
  const npx = `npm_config_offline=true npm_config_cache=${shellQuote(join(dir, 'npm-cache'))} npx hitless`;
  const config: FleetConfig = { hosts: [], hitless: npx, sshArgs: [], exec: ['sh', '-c', '{script}'], batch: 1, settleMs: 0, uploadDir: dir, configPath: join(dir, 'x.json') };
  const check = await checkHost(host(app), config, 'v2', local);
  assert.equal(check.problems.length, 1, check.problems.join('\n'));
  const problem = check.problems[0] ?? '';
  assert.ok(problem.startsWith(`hitless is not installed in ${app}, or \`${npx}\` cannot run it there (npm `), problem);
  assert.match(problem, /\(npm (error|ERR!) /, 'npm 10 says "npm error", older ones "npm ERR!"');
  assert.match(problem, /registry\.npmjs\.org\/hitless/, 'the line naming the cause, not the log path');
  assert.doesNotMatch(problem, /A complete log|no hitless master/);
  assert.ok(problem.endsWith('; install the hitless package in that app folder (docs/deploy.md), or set deploy.hitless to a command that runs it'), problem);
});

test('health settle: 2xx on every probe for the settle time passes; one 503 fails at once', async (t) => {
  let answer = 200;
  let count = 0;
  const server = http.createServer((req, res) => {
    count += 1;
    res.statusCode = answer;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/healthz`;
  const ok = await settleHealth(url, 600);
  assert.equal(ok.ok, true);
  assert.ok(ok.probes >= 3 && ok.probes === count, `${ok.probes} probes, ${count} requests`);
  answer = 503;
  assert.deepEqual(await settleHealth(url, 600), { ok: false, probes: 1, failure: { ok: false, status: 503 } });
  server.close();
  const refused = await settleHealth(url, 0);
  assert.deepEqual([refused.ok, refused.failure?.error], [false, 'ECONNREFUSED']);
});

test('progress lines: Kamal-style level and host, the host\'s output indented under it', () => {
  assert.equal(formatEvent({ level: 'info', host: 'app1', text: 'release v2 is live' }), ' INFO [app1] release v2 is live');
  assert.equal(formatEvent({ level: 'error', host: 'app2', text: 'release failed', output: ['Error: boom', '  at x'] }),
    'ERROR [app2] release failed\n      [app2] | Error: boom\n      [app2] |   at x');
  assert.equal(formatEvent({ level: 'warn', text: 'stopped' }), ' WARN stopped');
});

test('preflight: an ssh.identity file that does not exist on this machine is named (key and expanded path) instead of the host\'s "Permission denied"; ssh is not even run', async (t) => {
  const dir = await scratch(t);
  const config: FleetConfig = { hosts: [], hitless: 'hitless', sshArgs: [], exec: undefined, batch: 1, settleMs: 0, uploadDir: dir, configPath: join(dir, 'x.json') };
  const ran: string[] = [];
  const run = async (h: FleetHost) => {
    ran.push(h.name);
    return { code: 255, signal: null, stdout: '', stderr: 'root@127.0.0.1: Permission denied (publickey).\n' };
  };
  const key = join(dir, 'nope_ed25519');
  const check = await checkHost(host('/srv/app', { identity: key, identityFrom: 'deploy.ssh.identity' }), config, 'v2', run);
  assert.deepEqual(check.problems, [
    `deploy.ssh.identity: ${key} does not exist on this machine; ssh would leave it out and the host refuse the login ("Permission denied"): ` +
    'fix deploy.ssh.identity, or create that key and add its .pub to the host\'s authorized_keys',
  ]);
  assert.deepEqual(ran, []);

  // A key that is there is no problem of its own: the check goes on over ssh.
  await writeFile(key, 'a key\n');
  const reached = await checkHost(host('/srv/app', { identity: key, identityFrom: 'deploy.hosts[0].identity' }), config, 'v2', run);
  assert.deepEqual(ran, ['local']);
  assert.match(reached.problems[0] ?? '', /Permission denied/);
});

test('preflight: a master of another user (status says ERR_CONTROL_ACCESS) is named as such, not as "no master"', async (t) => {
  const dir = await scratch(t);
  const app = join(dir, 'app');
  await mkdir(join(app, 'releases', 'v1'), { recursive: true });
  await symlink('releases/v1', join(app, 'current'));
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ runDir: 'run' }));
  // What `hitless status --json` prints for a deploy user beside a root master (other-user.test.ts runs the real one).
  const said = 'a hitless master (pid 4208, user root) serves /srv/app, but user deploy may not open its control socket /run/app/control.sock: permission denied; run the command as root';
  const fake = join(dir, 'fake-hitless');
  await writeFile(fake, `#!/bin/sh\necho '${JSON.stringify({ ok: false, error: { code: 'ERR_CONTROL_ACCESS', message: said } })}'\necho 'hitless: ${said}' >&2\nexit 1\n`, { mode: 0o755 });
  const config: FleetConfig = { hosts: [], hitless: fake, sshArgs: [], exec: ['sh', '-c', '{script}'], batch: 1, settleMs: 0, uploadDir: dir, configPath: join(dir, 'x.json') };
  const check = await checkHost(host(app), config, 'v2', local);
  assert.deepEqual(check.problems, [
    `the hitless master of ${app} runs as another user, whose control socket the deploy's user may not open (${said}); ` +
      'log in as that user (deploy.ssh.user, or the host\'s "user"), or let the command become it (deploy.hitless: "sudo npx --no-install hitless"; docs/fleet.md)',
  ]);
});
