/**
 * `hitless deploy` through the exec transport (a local `sh -c` instead of ssh) to one real
 * app folder with its master: the --json outcome, a redeploy of identical content, and a
 * second deploy refused while the lock is held. No sshd needed, so this runs everywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/master.js';
import { buildArtifact, currentOf, REMOTE_HITLESS, servedBy, startCluster } from './cluster.js';

test('deploy over the exec transport: --json outcome, identical content reported unchanged, a held lock refused with JSON', { timeout: 60_000 }, async (t) => {
  const cluster = await startCluster(t, 1);
  const host = cluster.hosts[0]!;
  const config = join(cluster.dir, 'deploy.json');
  await writeFile(config, JSON.stringify({
    deploy: {
      hosts: [{ name: 'local', appDir: host.appDir, health: host.health }],
      exec: ['sh', '-c', '{script}'], hitless: REMOTE_HITLESS, settle: '200ms', uploadDir: cluster.uploads,
    },
  }));
  const v2 = await buildArtifact(cluster.dir, 'v2');

  const first = await runCli(['deploy', v2, '--id', 'v2', '--json', '--config', config]);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const result = JSON.parse(first.stdout) as { status: string; id: string; sha256: string; batches: string[][]; hosts: { name: string; before: string; after: string; outcome: string; ms: number }[] };
  assert.deepEqual([result.status, result.id, result.batches], ['live', 'v2', [['local']]]);
  assert.match(result.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(result.hosts.map((h) => [h.name, h.before, h.after, h.outcome]), [['local', 'v1', 'v2', 'live']]);
  assert.match(first.stderr, /INFO \[local\] release v2 is live/, 'progress goes to stderr with --json');
  assert.equal(await currentOf(host), 'v2');
  assert.equal(await servedBy(host.health), 'v2');

  const again = await runCli(['deploy', v2, '--id', 'v2-again', '--config', config]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /INFO \[local\] identical to its current release v2; nothing to switch/);
  assert.match(again.stdout, /^local +v2 +v2 +unchanged \(identical\)/m);

  await writeFile(join(cluster.dir, '.hitless-deploy.lock'), JSON.stringify({ pid: process.pid, user: 'alice', machine: hostname(), id: 'v9', artifact: 'v9.tgz', startedAt: Date.now() }));
  const busy = await runCli(['deploy', v2, '--json', '--config', config]);
  assert.equal(busy.code, 1);
  assert.deepEqual((({ status, code }) => ({ status, code }))(JSON.parse(busy.stdout) as { status: string; code: string }), { status: 'refused', code: 'ERR_DEPLOY_BUSY' });
  assert.match(busy.stderr, new RegExp(`^hitless: another deploy is running: release v9 \\(v9\\.tgz\\) by alice on ${hostname()}, pid ${process.pid}, started [\\d.]+ m?s ago`, 'm'));
});

test('deploy of a file that is not an archive: refused before the preflight, --dry-run or not, as a usage mistake (exit 2) in the one refusal format', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-deploy-bad-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // The exec "host" would leave a mark if anything ran there.
  const touched = join(dir, 'touched');
  const config = join(dir, 'deploy.json');
  await writeFile(config, JSON.stringify({ deploy: { hosts: ['local'], appDir: dir, exec: ['sh', '-c', `touch ${touched}; {script}`] } }));
  const bad = join(dir, 'bad.tgz');
  await writeFile(bad, 'notatar\n');
  for (const dryRun of [['--dry-run'], []]) {
    const r = await runCli(['deploy', bad, ...dryRun, '--config', config]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^hitless: artifact ${bad} is not a readable \\.tgz/\\.tar archive \\(.+\\); pack the build first: \`tar -czf app\\.tgz -C build \\.\` \\(ERR_USAGE\\)\n$`));
    assert.doesNotMatch(r.stdout, /preflight/);
  }
  await assert.rejects(stat(touched), { code: 'ENOENT' });
});
