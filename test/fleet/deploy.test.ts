/**
 * `hitless deploy` end to end: three hosts (app folders with their own masters on
 * 127.0.0.2-4, same port) reached through a real sshd on 127.0.0.1, behind a real nginx,
 * with wrk load through nginx while the release rolls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/master.js';
import { buildArtifact, currentOf, releasesOf, servedBy, startCluster, writeDeployConfig } from './cluster.js';
import { startFleetLoad } from './load.js';
import { noNginx, startNginx } from './nginx.js';
import { noSsh, startSshd } from './sshd.js';

const noWrk = spawnSync('wrk', ['-v'], { stdio: 'ignore' }).error !== undefined && 'wrk is not installed (Debian package wrk)';

async function generations(hosts: { master: { status(): Promise<{ generation: number }> } }[]): Promise<number[]> {
  return Promise.all(hosts.map(async (h) => (await h.master.status()).generation));
}

test('deploy: a rolling release through ssh reaches all three hosts with 0 failed requests through nginx (dry run first changes nothing)', { skip: noSsh || noNginx || noWrk, timeout: 120_000 }, async (t) => {
  const sshd = await startSshd(t);
  const cluster = await startCluster(t);
  const config = await writeDeployConfig(cluster, sshd);
  const v2 = await buildArtifact(cluster.dir, 'v2');

  const dry = await runCli(['deploy', v2, '--id', 'v2', '--dry-run', '--config', config]);
  assert.equal(dry.code, 0, dry.stdout + dry.stderr);
  assert.match(dry.stdout, /\[h3\] preflight ok: hitless \S+, current v1, master running, health status 200/);
  assert.match(dry.stdout, /would release batch 2: h3/);
  assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v1', 'v1', 'v1']);

  const nginx = await startNginx(t, cluster.hosts.map((h) => `${h.ip}:${cluster.port}`));
  const load = startFleetLoad(`${nginx}/`);
  t.after(() => load.stop());
  const started = Date.now();
  const deploy = await runCli(['deploy', v2, '--id', 'v2', '--config', config]);
  const deployMs = Date.now() - started;
  const result = await load.stop();

  assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
  assert.match(deploy.stdout, /INFO \[h1\] uploaded, sha256 verified on arrival/);
  assert.match(deploy.stdout, /INFO \[h2\] release v2 is live, generation 2/);
  assert.match(deploy.stdout, /INFO \[h3\] health http:\/\/127\.0\.0\.4:\d+\/healthz: 2xx for 500 ms/);
  assert.match(deploy.stdout, /^h1 +v1 +v2 +live/m);
  assert.match(deploy.stdout, /^h3 +v1 +v2 +live/m);
  // The canary finished before the others started.
  assert.ok(deploy.stdout.indexOf('[h1] health') < deploy.stdout.indexOf('[h2] upload'), deploy.stdout);
  assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v2', 'v2', 'v2']);
  assert.deepEqual(await Promise.all(cluster.hosts.map((h) => servedBy(h.health))), ['v2', 'v2', 'v2']);
  assert.ok(result.requests > 200, `too little load to mean anything:\n${result.detail}`);
  assert.equal(result.failed, 0, `failed requests through nginx:\n${result.detail}`);
  assert.deepEqual(readdirSync(cluster.uploads), [], 'uploads are removed after each release');
  assert.equal(existsSync(join(cluster.dir, 'workstation', '.hitless-deploy.lock')), false);
  t.diagnostic(`deploy of 3 hosts took ${deployMs} ms; ${result.requests} requests through nginx, ${result.failed} failed`);
});

test('deploy: a release that crashes at boot on host 2 rolls host 1 back, leaves host 3 untouched, drops nothing, exits 1 with the table', { skip: noSsh || noNginx || noWrk, timeout: 120_000 }, async (t) => {
  const sshd = await startSshd(t);
  const cluster = await startCluster(t);
  const [h1, h2, h3] = cluster.hosts as [typeof cluster.hosts[0], typeof cluster.hosts[0], typeof cluster.hosts[0]];
  const config = await writeDeployConfig(cluster, sshd);
  // v3 needs the app folder's host-config.json, which host 2 lacks.
  spawnSync('rm', [join(h2.appDir, 'host-config.json')]);
  const v3 = await buildArtifact(cluster.dir, 'v3', 'fleet/needs-host-config.mjs');
  const nginx = await startNginx(t, cluster.hosts.map((h) => `${h.ip}:${cluster.port}`));
  const load = startFleetLoad(`${nginx}/`);
  t.after(() => load.stop());

  const deploy = await runCli(['deploy', v3, '--id', 'v3', '--config', config]);
  const result = await load.stop();

  assert.equal(deploy.code, 1, deploy.stdout + deploy.stderr);
  assert.match(deploy.stdout, /ERROR \[h2\] release failed: release v3 did not go live: .*current is back on v1/);
  assert.match(deploy.stdout, /\[h2\] \| .*host-config\.json/, 'the failed workers\' output of host 2 is shown');
  assert.match(deploy.stdout, /INFO \[h1\] rolled back to v1/);
  assert.match(deploy.stdout, /^HOST +BEFORE +AFTER +OUTCOME +TIME/m);
  assert.match(deploy.stdout, /^h1 +v1 +v1 +rolled back/m);
  assert.match(deploy.stdout, /^h2 +v1 +v1 +FAILED .*release ERR_WORKER_EXITED/m);
  assert.match(deploy.stdout, /^h3 +v1 +v1 +untouched +-/m);
  assert.match(deploy.stderr, /hitless: deploy v3 failed on h2 at release .*rolled back h1; no host runs v3 \(ERR_DEPLOY_FAILED\)/);
  assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v1', 'v1', 'v1']);
  assert.deepEqual(await Promise.all(cluster.hosts.map((h) => servedBy(h.health))), ['v1', 'v1', 'v1']);
  assert.deepEqual(await releasesOf(h3), ['v1'], 'host 3 never received v3');
  assert.deepEqual(await generations([h1, h2, h3]), [3, 1, 1], 'h1 reloaded twice (v3, back to v1); h2 kept generation 1 serving; h3 untouched');
  assert.ok(result.requests > 200, `too little load to mean anything:\n${result.detail}`);
  assert.equal(result.failed, 0, `failed requests through nginx:\n${result.detail}`);
  assert.deepEqual(readdirSync(cluster.uploads), []);
});

test('deploy: an unreachable host fails the preflight with a clear error and nothing changes anywhere', { skip: noSsh, timeout: 60_000 }, async (t) => {
  const sshd = await startSshd(t);
  const cluster = await startCluster(t);
  // sshd listens on 127.0.0.1 only: 127.0.0.5 refuses the connection.
  const config = await writeDeployConfig(cluster, sshd, { address: { h3: '127.0.0.5' } });
  const v2 = await buildArtifact(cluster.dir, 'v2');

  const deploy = await runCli(['deploy', v2, '--id', 'v2', '--config', config]);
  assert.equal(deploy.code, 1, deploy.stdout + deploy.stderr);
  assert.match(deploy.stderr, new RegExp(`^hitless: preflight failed on 1 of 3 hosts, nothing was changed: h3: cannot reach it over ssh \\(root@127\\.0\\.0\\.5 port ${sshd.port}\\): ssh: connect to host 127\\.0\\.0\\.5 port ${sshd.port}: Connection refused`, 'm'));
  assert.match(deploy.stdout, /INFO \[h1\] preflight ok/);
  assert.doesNotMatch(deploy.stdout, /upload/);
  assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v1', 'v1', 'v1']);
  assert.deepEqual(await Promise.all(cluster.hosts.map(releasesOf)), [['v1'], ['v1'], ['v1']]);
  assert.deepEqual(await generations(cluster.hosts), [1, 1, 1]);
  assert.deepEqual(readdirSync(cluster.uploads), []);
  assert.equal(existsSync(join(cluster.dir, 'workstation', '.hitless-deploy.lock')), false, 'the deploy lock is released');
});
