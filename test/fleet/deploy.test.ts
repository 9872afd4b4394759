/**
 * `hitless deploy` end to end: three hosts (app folders with their own masters on
 * 127.0.0.2-4, same port) reached through a real sshd on 127.0.0.1, behind a real nginx,
 * with load through nginx while the release rolls.
 *
 * The hosts, sshd and nginx are started once for the file (starting 3 masters costs more
 * than a deploy on 2 cores), so the scenarios run in order and each checks the state it
 * starts from: v1 everywhere → (unreachable host: still v1) → v2 everywhere → (v3 fails on
 * host 2: still v2 everywhere).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/master.js';
import { buildArtifact, currentOf, releasesOf, servedBy, startCluster, writeDeployConfig, type Cluster } from './cluster.js';
import { startFleetLoad } from './load.js';
import { noNginx, startNginx } from '../helpers/nginx.js';
import { noSsh, startSshd, type Sshd } from './sshd.js';


/** The file's shared setup, cleaned up like a test's (hooks in the order registered). */
const cleanups: (() => unknown)[] = [];
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;
let sshd: Sshd;
let cluster: Cluster;
let nginx: string;
let config: string;

async function generations(): Promise<number[]> {
  return Promise.all(cluster.hosts.map(async (h) => (await h.master.status()).generation));
}

/** Runs `hitless deploy` with load through nginx meanwhile; returns both results. */
async function deployUnderLoad(args: string[]) {
  const load = startFleetLoad(`${nginx}/`);
  const started = Date.now();
  const deploy = await runCli(['deploy', ...args, '--config', config]);
  const ms = Date.now() - started;
  return { deploy, ms, load: await load.stop() };
}

describe('hitless deploy over ssh behind nginx', { skip: noSsh || noNginx }, () => {
  before(async () => {
    const started = Date.now();
    sshd = await startSshd(suite);
    cluster = await startCluster(suite);
    nginx = await startNginx(suite, cluster.hosts.map((h) => `${h.ip}:${cluster.port}`));
    config = await writeDeployConfig(cluster, sshd);
    process.stdout.write(`# fleet setup (sshd, 3 masters, nginx): ${Date.now() - started} ms\n`);
  }, { timeout: 60_000 });
  after(async () => {
    for (const fn of cleanups) await fn();
  });

  test('an unreachable host fails the preflight with a clear error and nothing changes anywhere', { timeout: 60_000 }, async () => {
    const broken = await writeDeployConfig(cluster, sshd, { address: { h3: '127.0.0.5' }, file: 'unreachable.json' });
    const v2 = await buildArtifact(cluster.dir, 'v2');
    const deploy = await runCli(['deploy', v2, '--id', 'v2', '--config', broken]);
    assert.equal(deploy.code, 1, deploy.stdout + deploy.stderr);
    // sshd listens on 127.0.0.1 only: 127.0.0.5 refuses the connection.
    assert.match(deploy.stderr, new RegExp(`^hitless: preflight failed on 1 of 3 hosts, nothing was changed: h3: cannot reach it over ssh \\(root@127\\.0\\.0\\.5 port ${sshd.port}\\): ssh: connect to host 127\\.0\\.0\\.5 port ${sshd.port}: Connection refused`, 'm'));
    assert.match(deploy.stdout, /ERROR \[h3\] preflight: cannot reach it/);
    assert.match(deploy.stdout, /INFO \[h1\] preflight ok/);
    assert.doesNotMatch(deploy.stdout, /upload/);
    assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v1', 'v1', 'v1']);
    assert.deepEqual(await Promise.all(cluster.hosts.map(releasesOf)), [['v1'], ['v1'], ['v1']]);
    assert.deepEqual(await generations(), [1, 1, 1]);
    assert.deepEqual(readdirSync(cluster.uploads), []);
    assert.equal(existsSync(join(cluster.dir, 'workstation', '.hitless-deploy.lock')), false, 'the deploy lock is released');
  });

  test('a rolling release reaches all three hosts, canary first, with 0 failed requests through nginx (a dry run first changes nothing)', { timeout: 120_000 }, async (t) => {
    const v2 = await buildArtifact(cluster.dir, 'v2');
    const dry = await runCli(['deploy', v2, '--id', 'v2', '--dry-run', '--config', config]);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /\[h3\] preflight ok: hitless \S+, current v1, master running, health status 200/);
    assert.match(dry.stdout, /would release batch 2: h3/);
    assert.deepEqual(await generations(), [1, 1, 1]);

    const { deploy, ms, load } = await deployUnderLoad([v2, '--id', 'v2']);
    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    assert.match(deploy.stdout, /INFO \[h1\] uploaded, sha256 verified on arrival/);
    assert.match(deploy.stdout, /INFO \[h2\] release v2 is live, generation 2/);
    assert.match(deploy.stdout, /INFO \[h3\] health http:\/\/127\.0\.0\.4:\d+\/healthz: 2xx for 500 ms/);
    for (const h of ['h1', 'h2', 'h3']) assert.match(deploy.stdout, new RegExp(`^${h} +v1 +v2 +live`, 'm'));
    assert.ok(deploy.stdout.indexOf('[h1] health') < deploy.stdout.indexOf('[h2] upload'), `the canary is done before host 2 starts:\n${deploy.stdout}`);
    assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v2', 'v2', 'v2']);
    assert.deepEqual(await Promise.all(cluster.hosts.map((h) => servedBy(h.health))), ['v2', 'v2', 'v2']);
    assert.ok(load.requests > 200, `too little load to mean anything:\n${load.detail}`);
    assert.equal(load.failed, 0, `failed requests through nginx:\n${load.detail}`);
    assert.deepEqual(readdirSync(cluster.uploads), [], 'uploads are removed after each release');
    assert.equal(existsSync(join(cluster.dir, 'workstation', '.hitless-deploy.lock')), false);
    t.diagnostic(`deploy to 3 hosts: ${ms} ms; ${load.requests} requests through nginx meanwhile, ${load.failed} failed`);
    t.diagnostic(deploy.stdout.split('\n').filter((l) => / (uploaded|is live|health)/.test(l)).join('\n'));
  });

  test('a release that crashes at boot on host 2: host 1 rolled back, host 3 untouched, 0 failed requests, exit 1 with the table', { timeout: 120_000 }, async (t) => {
    assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v2', 'v2', 'v2'], 'starts where the rolling deploy left');
    const [, h2, h3] = cluster.hosts as [Cluster['hosts'][0], Cluster['hosts'][0], Cluster['hosts'][0]];
    // v3 needs the app folder's host-config.json, which host 2 lacks.
    rmSync(join(h2.appDir, 'host-config.json'));
    const v3 = await buildArtifact(cluster.dir, 'v3', 'fleet/needs-host-config.mjs');
    const before = await generations();

    const { deploy, ms, load } = await deployUnderLoad([v3, '--id', 'v3']);
    assert.equal(deploy.code, 1, deploy.stdout + deploy.stderr);
    assert.match(deploy.stdout, /ERROR \[h2\] release failed: release v3 did not go live: .*current is back on v2/);
    assert.match(deploy.stdout, /\[h2\] \| Error: ENOENT: no such file or directory, open '\.\.\/\.\.\/host-config\.json'/, 'host 2\'s worker output is shown');
    assert.match(deploy.stdout, /INFO \[h1\] rolled back to v2/);
    assert.match(deploy.stdout, /^HOST +BEFORE +AFTER +OUTCOME +TIME +DETAIL$/m);
    assert.match(deploy.stdout, /^h1 +v2 +v2 +rolled back +\d/m);
    assert.match(deploy.stdout, /^h2 +v2 +v2 +FAILED +\d.* release ERR_WORKER_EXITED: release v3 did not go live/m);
    assert.match(deploy.stdout, /^h3 +v2 +v2 +untouched +-$/m);
    assert.match(deploy.stderr, /^hitless: deploy v3 failed on h2 at release \(ERR_WORKER_EXITED: .*\); rolled back h1; no host runs v3 \(ERR_DEPLOY_FAILED\)$/m);
    assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v2', 'v2', 'v2']);
    assert.deepEqual(await Promise.all(cluster.hosts.map((h) => servedBy(h.health))), ['v2', 'v2', 'v2']);
    assert.deepEqual(await releasesOf(h3), ['v1', 'v2'], 'host 3 never received v3');
    const afterGens = await generations();
    assert.deepEqual([afterGens[0]! - before[0]!, afterGens[1]! - before[1]!, afterGens[2]! - before[2]!], [2, 0, 0],
      'h1 reloaded twice (v3, then back to v2); h2 kept its generation serving; h3 was untouched');
    assert.ok(load.requests > 200, `too little load to mean anything:\n${load.detail}`);
    assert.equal(load.failed, 0, `failed requests through nginx:\n${load.detail}`);
    assert.deepEqual(readdirSync(cluster.uploads), []);
    t.diagnostic(`failed deploy with rollback: ${ms} ms; ${load.requests} requests through nginx meanwhile, ${load.failed} failed`);
  });

  test('the same deploy again once host 2 is fixed, with the same --id (a CI retry of one commit), goes live everywhere: v3 left rolled back on h1 and h2 is no obstacle', { timeout: 120_000 }, async () => {
    assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v2', 'v2', 'v2'], 'starts where the failed deploy left');
    const h2 = cluster.hosts[1]!;
    await writeFile(join(h2.appDir, 'host-config.json'), JSON.stringify({ name: h2.name }));
    const { deploy, load } = await deployUnderLoad([join(cluster.dir, 'builds', 'v3.tgz'), '--id', 'v3']);
    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    for (const h of ['h1', 'h2', 'h3']) assert.match(deploy.stdout, new RegExp(`^${h} +v2 +v3 +live`, 'm'));
    assert.deepEqual(await Promise.all(cluster.hosts.map((h) => servedBy(h.health))), ['v3', 'v3', 'v3']);
    assert.equal(load.failed, 0, `failed requests through nginx:\n${load.detail}`);
  });
});
