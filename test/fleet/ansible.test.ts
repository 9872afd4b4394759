/**
 * examples/ansible/deploy.yml run by the real ansible-playbook against the same three test
 * hosts, through the test's sshd: canary first (serial), `hitless release` on each, the
 * health probes from the host itself, every host on the new release at the end.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, root } from '../helpers/master.js';
import { buildArtifact, currentOf, releasesOf, servedBy, startCluster, type Cluster } from './cluster.js';
import { noSsh, startSshd, type Sshd } from './sshd.js';

const noAnsible = spawnSync('ansible-playbook', ['--version'], { stdio: 'ignore' }).error !== undefined
  && 'ansible-playbook is not installed (Debian package ansible)';
const playbook = join(root, 'examples', 'ansible', 'deploy.yml');

async function inventory(cluster: Cluster, sshd: Sshd): Promise<string> {
  const path = join(cluster.dir, 'inventory.ini');
  const ssh = sshd.clientArgs.join(' ');
  await writeFile(path, [
    '[app]',
    ...cluster.hosts.map((h) => `${h.name} ansible_host=127.0.0.1 app_dir=${h.appDir} health_url=${h.health}`),
    '',
    '[app:vars]',
    `ansible_port=${sshd.port}`, 'ansible_user=root', `ansible_ssh_private_key_file=${sshd.key}`,
    `ansible_ssh_common_args='${ssh}'`,
    'ansible_python_interpreter=/usr/bin/python3',
    `hitless="${process.execPath} ${cli}"`, `upload_dir=${cluster.uploads}`, 'settle_probes=1', 'settle_pause=0',
    '',
  ].join('\n'));
  return path;
}

/** Runs ansible-playbook with only this test's settings (no ~/.ansible, no /etc/ansible). */
async function ansiblePlaybook(t: TestContext, cluster: Cluster, args: string[]): Promise<{ code: number | null; out: string }> {
  const home = join(cluster.dir, 'ansible');
  await mkdir(home, { recursive: true });
  await writeFile(join(home, 'ansible.cfg'), '[defaults]\n');
  // Ansible's own ssh connection sharing (one handshake per host, not per task); the
  // masters it leaves for ControlPersist are closed when the test ends.
  const controls = await mkdtemp(join(tmpdir(), 'hitless-ansible-cp-'));
  t.after(async () => {
    for (const socket of await readdir(controls)) spawnSync('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(controls, socket)}`, '-O', 'exit', 'x'], { stdio: 'ignore' });
    await rm(controls, { recursive: true, force: true });
  });
  const env = {
    ...process.env, ANSIBLE_CONFIG: join(home, 'ansible.cfg'), ANSIBLE_LOCAL_TEMP: join(home, 'local'), ANSIBLE_REMOTE_TEMP: join(home, 'remote'),
    ANSIBLE_SSH_ARGS: '-o ControlMaster=auto -o ControlPersist=60s', ANSIBLE_SSH_CONTROL_PATH_DIR: controls, ANSIBLE_PIPELINING: 'true',
    ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_RETRY_FILES_ENABLED: 'false', ANSIBLE_CALLBACKS_ENABLED: 'ansible.posix.profile_tasks',
  };
  return new Promise((resolve) => {
    const child = spawn('ansible-playbook', args, { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The file's shared hosts, cleaned up like a test's (hooks in the order registered). */
const cleanups: (() => unknown)[] = [];
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;
let sshd: Sshd;
let cluster: Cluster;
let hosts: string;

describe('examples/ansible/deploy.yml run by ansible-playbook', { skip: noSsh || noAnsible }, () => {
  before(async () => {
    sshd = await startSshd(suite);
    cluster = await startCluster(suite);
    hosts = await inventory(cluster, sshd);
  }, { timeout: 60_000 });
  after(async () => {
    for (const fn of cleanups) await fn();
  });

  test('a release that goes live on the canary but fails its health check is rolled back there and stops the play', { timeout: 120_000 }, async (t) => {
    const bad = await buildArtifact(cluster.dir, 'sick', 'fleet/unhealthy.mjs');
    const run = await ansiblePlaybook(suite, cluster, ['-i', hosts, playbook, '-e', `artifact=${bad}`, '-e', 'release_id=sick']);
    assert.equal(run.code, 2, run.out);
    assert.match(run.out, /TASK \[Switch this host back if the release had gone live\][^\n]*\n(?:.*\n)?changed: \[h1\]/);
    assert.match(run.out, /release sick failed on h1, which runs its previous release again/);
    assert.doesNotMatch(run.out, /\[h2\]|\[h3\]/, 'the play stopped after the canary');
    assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v1', 'v1', 'v1']);
    assert.deepEqual(await Promise.all(cluster.hosts.map(releasesOf)), [['sick', 'v1'], ['v1'], ['v1']]);
    assert.deepEqual(await readdir(cluster.uploads), []);
    t.diagnostic(run.out.slice(run.out.lastIndexOf('=====')));
  });

  test('a good release rolls across the three hosts, canary first, then a batch of two', { timeout: 120_000 }, async (t) => {
    const v2 = await buildArtifact(cluster.dir, 'v2');
    const started = Date.now();
    const run = await ansiblePlaybook(suite, cluster, ['-i', hosts, playbook, '-e', `artifact=${v2}`, '-e', 'release_id=v2']);
    const ms = Date.now() - started;
    assert.equal(run.code, 0, run.out);
    for (const h of ['h1', 'h2', 'h3']) assert.match(run.out, new RegExp(`^${h} +: ok=\\d+ +changed=\\d+ +unreachable=0 +failed=0`, 'm'));
    // serial: [1, 2] — the first batch ran the release on h1 alone.
    const firstRelease = run.out.slice(run.out.indexOf('TASK [hitless release'), run.out.indexOf('TASK [Health'));
    assert.match(firstRelease, /changed: \[h1\]/);
    assert.doesNotMatch(firstRelease, /\[h2\]|\[h3\]/);
    assert.deepEqual(await Promise.all(cluster.hosts.map(currentOf)), ['v2', 'v2', 'v2']);
    assert.deepEqual(await Promise.all(cluster.hosts.map((h) => servedBy(h.health))), ['v2', 'v2', 'v2']);
    assert.deepEqual(await readdir(cluster.uploads), [], 'uploads are removed');
    t.diagnostic(`ansible-playbook over 3 hosts: ${ms} ms`);
    t.diagnostic(run.out.slice(run.out.lastIndexOf('=====')));
  });
});
