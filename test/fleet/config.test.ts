// The deploy section of hitless.json: normalisation, clear errors, and the master ignoring it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHitlessError } from '../../src/errors.js';
import { loadFleetConfig, planBatches } from '../../src/fleet/config.js';
import { runCli } from '../helpers/master.js';

async function withConfig(t: { after(fn: () => unknown): void }, content: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-fleet-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'hitless.json'), JSON.stringify(content));
  return dir;
}

function configError(dir: string): string {
  try {
    loadFleetConfig(undefined, dir);
  } catch (err) {
    assert.ok(isHitlessError(err), String(err));
    return `${err.code}: ${err.message}`;
  }
  assert.fail('expected a config error');
}

test('deploy config: host names and objects get the section defaults, {host} and {name} filled into the health URL', async (t) => {
  const dir = await withConfig(t, {
    command: ['node', 'server.js'],
    deploy: {
      hosts: ['app1', { name: 'app2', address: '10.0.0.2', port: 2222, appDir: '/srv/other', health: 'https://app2.internal/healthz', identity: '~/.ssh/app2' }],
      appDir: '/srv/app', health: 'http://{host}:8080/healthz?from={name}', ssh: { user: 'deploy', identity: '~/.ssh/deploy', args: ['-o', 'ProxyJump=bastion'] },
      batch: 2, settle: '2s',
    },
  });
  const fleet = loadFleetConfig(undefined, dir);
  assert.deepEqual(fleet.hosts, [
    { name: 'app1', address: 'app1', appDir: '/srv/app', health: 'http://app1:8080/healthz?from=app1', user: 'deploy', port: undefined, identity: join(homedir(), '.ssh/deploy'), identityFrom: 'deploy.ssh.identity' },
    { name: 'app2', address: '10.0.0.2', appDir: '/srv/other', health: 'https://app2.internal/healthz', user: 'deploy', port: 2222, identity: join(homedir(), '.ssh/app2'), identityFrom: 'deploy.hosts[1].identity' },
  ]);
  assert.deepEqual([fleet.batch, fleet.settleMs, fleet.hitless, fleet.uploadDir, fleet.sshArgs, fleet.exec], [2, 2000, 'hitless', '/tmp', ['-o', 'ProxyJump=bastion'], undefined]);
  assert.equal(fleet.configPath, join(dir, 'hitless.json'));
});

test('deploy config: mistakes name the key and the fix', async (t) => {
  assert.match(configError(await withConfig(t, { command: ['x'] })), /^ERR_CONFIG_INVALID: .*has no deploy section; add "deploy": \{"hosts"/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a'], appDir: '/srv/app', setle: '1s' } })), /unknown key "deploy.setle" in hitless.json; did you mean "deploy.settle"\?/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a'], appDir: '/srv/app', ssh: { usr: 'x' } } })), /unknown key "deploy.ssh.usr" in hitless.json; did you mean "deploy.ssh.user"\?/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a'] } })), /"deploy.appDir" in hitless.json: got nothing; no app folder for host "a"/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a'], appDir: 'srv/app' } })), /"deploy.appDir" in hitless.json: got "srv\/app"; expected an absolute path/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a', { name: 'a' }], appDir: '/srv' } })), /"deploy.hosts\[1\]".*host name "a" appears twice/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: [{ name: 'a', port: 70000 }], appDir: '/srv' } })), /deploy.hosts\[0\]/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a'], appDir: '/srv', settle: 'soon' } })), /"deploy.settle" in hitless.json: got "soon"; expected a duration/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a'], appDir: '/srv', exec: ['docker', 'exec', '{name}'] } })), /"deploy.exec".*no "\{script\}" argument/);
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['bad host'], appDir: '/srv', health: 'http://{host}/' } })), /"deploy.health".*becomes http:\/\/bad host\/, which is not a URL/);
});

test('deploy config: a typo in a health URL placeholder ({hots}) is refused, naming the key and the placeholders there are', async (t) => {
  assert.equal(configError(await withConfig(t, { deploy: { hosts: ['a'], appDir: '/srv', health: 'http://{hots}:8080/healthz' } })),
    'ERR_CONFIG_INVALID: "deploy.health" in hitless.json: got "http://{hots}:8080/healthz"; {hots} is not a placeholder; only {host} (the host\'s address) and {name} (its name) are filled in');
  assert.match(configError(await withConfig(t, { deploy: { hosts: ['a', { name: 'b', health: 'http://{host}:8080/{Name}' }], appDir: '/srv', health: 'http://{host}:8080/' } })),
    /^ERR_CONFIG_INVALID: "deploy\.hosts\[1\]\.health" in hitless\.json: got "http:\/\/\{host\}:8080\/\{Name\}"; \{Name\} is not a placeholder/);
  const check = await runCli(['check'], {}, await withConfig(t, { deploy: { hosts: ['a'], appDir: '/srv', health: 'http://{hots}:8080/' } }));
  assert.equal(check.code, 2, check.stdout + check.stderr);
  assert.match(check.stderr, /"deploy\.health" in hitless\.json: got "http:\/\/\{hots\}:8080\/"; \{hots\} is not a placeholder/);
});

test('deploy config: the master accepts a hitless.json with a deploy section and ignores it; a bad one is refused', async (t) => {
  const good = await withConfig(t, { command: ['node', 's.js'], listen: ['127.0.0.1:0'], deploy: { hosts: ['a'], appDir: '/srv/app' } });
  const ok = await runCli(['start', '--print-config'], {}, good);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as Record<string, unknown>).deploy, undefined);
  const bad = await withConfig(t, { command: ['node', 's.js'], listen: ['127.0.0.1:0'], deploy: { hosts: [], appDir: '/srv/app' } });
  const refused = await runCli(['start', '--print-config'], {}, bad);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /"deploy.hosts" in hitless.json: got \[\]; expected a non-empty array of host names/);
});

test('planBatches: the canary alone, then batches of the configured size', () => {
  assert.deepEqual(planBatches(['a', 'b', 'c', 'd', 'e'], 2), [['a'], ['b', 'c'], ['d', 'e']]);
  assert.deepEqual(planBatches(['a', 'b', 'c'], 1), [['a'], ['b'], ['c']]);
  assert.deepEqual(planBatches(['a'], 3), [['a']]);
  assert.deepEqual(planBatches([], 3), []);
});
