/**
 * `hitless deploy`'s rough edges (issue 20), over a real sshd to one host (an app folder
 * with its own master on 127.0.0.2): every refusal in one format with its code; the health
 * URL probed from the deploying machine; a release id equal to the host's current release
 * with another artifact caught by the preflight; a host missing from known_hosts gets the
 * command that fixes it; a deploy killed with SIGKILL leaves its upload, which the next
 * deploy removes. Scenarios run in order on one host (starting a master costs more than a
 * deploy on 2 cores); each checks the state it starts from.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, cli, runCli, waitUntil } from '../helpers/master.js';
import { freePort as freeLocalPort } from '../helpers/free-port.js';
import { buildArtifact, currentOf, REMOTE_HITLESS, releasesOf, startCluster, type Cluster } from './cluster.js';
import { noSsh, startSshd, type Sshd } from './sshd.js';

const cleanups: (() => unknown)[] = [];
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;
let sshd: Sshd;
let cluster: Cluster;

/** The workstation's hitless.json (the deploy lock lives beside it); returns its path. */
async function deployConfig(over: { health?: string; hitless?: string; args?: string[] } = {}): Promise<string> {
  const host = cluster.hosts[0]!;
  const path = join(cluster.dir, 'deploy.json');
  await writeFile(path, JSON.stringify({
    deploy: {
      hosts: [{ name: host.name, address: '127.0.0.1', appDir: host.appDir, health: over.health ?? host.health }],
      hitless: over.hitless ?? REMOTE_HITLESS,
      ssh: { user: 'root', port: sshd.port, identity: sshd.key, args: over.args ?? sshd.clientArgs },
      settle: '200ms',
      uploadDir: cluster.uploads,
    },
  }, null, 2));
  return path;
}

async function generation(): Promise<number> {
  return (await cluster.hosts[0]!.master.status()).generation;
}

describe('hitless deploy refusals and leftovers over ssh', { skip: noSsh }, () => {
  before(async () => {
    sshd = await startSshd(suite);
    cluster = await startCluster(suite, 1);
  }, { timeout: 60_000 });
  after(async () => {
    for (const fn of cleanups) await fn();
  });

  test('every refusal has one format, the message then its code: a busy lock, a failed preflight (a health URL that does not answer from the deploying machine, where it is probed)', { timeout: 60_000 }, async () => {
    const v2 = await buildArtifact(cluster.dir, 'v2');
    const lock = join(cluster.dir, '.hitless-deploy.lock');
    await writeFile(lock, JSON.stringify({ pid: process.pid, user: 'alice', machine: hostname(), id: 'v9', artifact: 'v9.tgz', startedAt: Date.now() }));
    const busy = await runCli(['deploy', v2, '--id', 'v2', '--config', await deployConfig()]);
    rmSync(lock);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /^hitless: another deploy is running: release v9 \(v9\.tgz\) by alice .*; wait for it to finish \(lock file .*\) \(ERR_DEPLOY_BUSY\)$/m);

    // Nothing listens on this port: from here, the health URL does not answer.
    const nowhere = `http://127.0.0.1:${await freeLocalPort()}/healthz`;
    const refused = await runCli(['deploy', v2, '--id', 'v2', '--config', await deployConfig({ health: nowhere })]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`^hitless: preflight failed on 1 of 1 host, nothing was changed: h1: health ${nowhere.replace(/[.]/g, '\\.')} does not answer from this machine \\(ECONNREFUSED\\): hitless deploy probes it from where it runs, not on the host; fix deploy\\.health, or see docs/fleet\\.md "Health checks and bastions" when only the hosts can reach that address \\(ERR_DEPLOY_PREFLIGHT\\)$`, 'm'));
    assert.equal(await currentOf(cluster.hosts[0]!), 'v1');
  });

  test('a release id equal to the host\'s current release with another artifact is caught by the preflight, nothing uploaded; the same artifact again is fine (unchanged)', { timeout: 60_000 }, async () => {
    const host = cluster.hosts[0]!;
    assert.equal(await currentOf(host), 'v1');
    const before = await generation();
    const other = await buildArtifact(cluster.dir, 'v1-rebuilt');
    const config = await deployConfig();
    const refused = await runCli(['deploy', other, '--id', 'v1', '--config', config]);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /^hitless: preflight failed on 1 of 1 host, nothing was changed: h1: release v1 is its current release but holds other content than v1-rebuilt\.tgz \(sha256 [0-9a-f]{12}\) \(made from an archive with sha256 [0-9a-f]{12}\): hitless release would refuse it there after the upload; give another --id \(ERR_DEPLOY_PREFLIGHT\)$/m);
    assert.doesNotMatch(refused.stdout, /\] upload /);
    assert.deepEqual(readdirSync(cluster.uploads), []);
    assert.deepEqual([await currentOf(host), await generation()], ['v1', before]);

    const same = await runCli(['deploy', join(cluster.dir, 'builds', 'v1.tgz'), '--id', 'v1', '--config', config]);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    assert.match(same.stdout, /INFO \[h1\] identical to its current release v1; nothing to switch/);
    assert.deepEqual([await currentOf(host), await generation()], ['v1', before]);
  });

  test('a first deploy to a host missing from known_hosts: the preflight says which file, the command that adds the key, and the connection by hand with the deploy\'s own ssh options; after running the command the deploy passes', { timeout: 60_000 }, async () => {
    const knownHosts = join(cluster.dir, 'empty_known_hosts');
    await writeFile(knownHosts, '');
    // StrictHostKeyChecking left at ssh's default (ask): the deploy's BatchMode refuses the
    // unknown key all the same, and a connection by hand would ask, so it is offered.
    const args = ['-F', '/dev/null', '-o', `UserKnownHostsFile=${knownHosts}`];
    const config = await deployConfig({ args });
    const v2 = await buildArtifact(cluster.dir, 'v2');
    const refused = await runCli(['deploy', v2, '--id', 'v2', '--dry-run', '--config', config]);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    const scan = `ssh-keyscan -p ${sshd.port} -H 127.0.0.1 >> ${knownHosts}`;
    assert.ok(refused.stderr.includes(
      `h1: cannot reach it over ssh (root@127.0.0.1 port ${sshd.port}): Host key verification failed: its host key is not in ${knownHosts} ` +
      `(ssh checks it, and a deploy has no one to ask), so this is a first connection: after checking the key with the host's owner, add it with ${scan}, ` +
      `or connect once by hand (ssh -l root -p ${sshd.port} -i ${sshd.key} -o IdentitiesOnly=yes ${args.join(' ')} 127.0.0.1) and accept it (ERR_DEPLOY_PREFLIGHT)`), refused.stderr);
    execFileSync('sh', ['-c', scan], { stdio: 'ignore' });
    const passes = await runCli(['deploy', v2, '--id', 'v2', '--dry-run', '--config', config]);
    assert.equal(passes.code, 0, passes.stdout + passes.stderr);
    assert.match(passes.stdout, /INFO \[h1\] preflight ok/);
  });

  test('a deploy killed with SIGKILL in the middle of its release leaves its upload (and its lock); the next deploy removes that file, then deploys', { timeout: 120_000 }, async (t) => {
    const host = cluster.hosts[0]!;
    assert.equal(await currentOf(host), 'v1');
    // The host's `hitless release` waits on a FIFO, so the test kills the deploy while its
    // release is under way on the host, and the host's release script with it.
    const fifo = join(cluster.dir, 'release-gate');
    execFileSync('mkfifo', [fifo]);
    const wrapper = join(cluster.dir, 'hitless-gated');
    await writeFile(wrapper, `#!/bin/sh\nif [ "$1" = release ]; then echo "$$ $PPID" > ${fifo}.pids; read _ < ${fifo}; fi\nexec ${REMOTE_HITLESS} "$@"\n`);
    await chmod(wrapper, 0o755);
    const v2 = await buildArtifact(cluster.dir, 'v2');
    const config = await deployConfig({ hitless: wrapper });
    // The killed deploy's ssh connection masters live in a temp folder of its own (TMPDIR), so
    // the clean-up touches them and never another suite's deploys running on this machine.
    // Short: a unix socket path has at most 107 bytes.
    const ownTmp = mkdtempSync(join(tmpdir(), 'hs-'));
    t.after(() => cleanSshMasters(ownTmp));

    const deploy = spawn(process.execPath, [cli, 'deploy', v2, '--id', 'v2-killed', '--config', config], {
      detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: ownTmp },
    });
    let out = '';
    deploy.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<void>((resolve) => deploy.once('exit', () => resolve()));
    await waitUntil(() => existsSync(`${fifo}.pids`) && readFileSync(`${fifo}.pids`, 'utf8').endsWith('\n'), 'the host\'s release started', 60_000, 20);
    process.kill(-deploy.pid!, 'SIGKILL');
    await exited;
    // The release script's shell first: killed after its child, it would get the time on a
    // busy machine to run its next line, which removes the upload this test looks for.
    const [wrapperPid, scriptPid] = readFileSync(`${fifo}.pids`, 'utf8').trim().split(' ').map(Number);
    for (const pid of [scriptPid!, wrapperPid!]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    assert.match(out, /INFO \[h1\] uploaded, sha256 verified on arrival/);
    const leftover = 'hitless-deploy-v2-killed-h1.tgz';
    assert.deepEqual(readdirSync(cluster.uploads), [leftover], 'the killed deploy left its upload');
    const lock = JSON.parse(readFileSync(join(cluster.dir, '.hitless-deploy.lock'), 'utf8')) as { pid: number; id: string };
    assert.deepEqual([lock.id, alive(lock.pid)], ['v2-killed', false]);
    assert.equal(await currentOf(host), 'v1');

    const next = await runCli(['deploy', v2, '--id', 'v2', '--config', await deployConfig()]);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.match(next.stdout, new RegExp(`WARN the deploy of v2-killed \\(pid ${lock.pid}, by \\S+\\) died holding the lock; removing what it left in the upload folders`));
    assert.ok(next.stdout.includes(`INFO [h1] removed ${join(cluster.uploads, leftover)}, left by the deploy of v2-killed`), next.stdout);
    assert.ok(next.stdout.indexOf('removed') < next.stdout.indexOf('[h1] upload'), 'removed before this deploy uploads');
    assert.deepEqual(readdirSync(cluster.uploads), []);
    assert.equal(await currentOf(host), 'v2');
    assert.deepEqual(await releasesOf(host), ['v1', 'v2']);
  });
});

/** Closes the ssh connection masters a killed deploy left in `tmp` (its own close() never ran) and removes the folder. */
function cleanSshMasters(tmp: string): void {
  for (const name of readdirSync(tmp).filter((n) => n.startsWith('hitless-ssh-'))) {
    const dir = join(tmp, name);
    for (const socket of readdirSync(dir)) {
      spawnSync('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(dir, socket)}`, '-O', 'exit', 'hitless-deploy'], { stdio: 'ignore' });
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}
