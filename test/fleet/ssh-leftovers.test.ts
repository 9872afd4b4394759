/**
 * What a `hitless deploy` killed with SIGKILL leaves of its ssh connection sharing (h17 F7):
 * its ControlMaster (`ssh: … [mux]`, detached, holding a login on the host) and the private
 * temp folder of its socket. The master now exits on its own shortly after its last session
 * (ControlPersist 10 s, was 60 s), and the next deploy removes the folders of dead deploys.
 * The killed deploy's preflight waits on a FIFO on the "host", so the test kills it while
 * the connection is up and never sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_PERSIST_S } from '../../src/fleet/transport.js';
import { cli, runCli, waitUntil } from '../helpers/master.js';
import { buildArtifact } from './cluster.js';
import { noSsh, startSshd } from './sshd.js';

/** Alive and not a zombie left for a parent that does not reap (an orphan's new parent may not). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

test('a deploy killed with SIGKILL: its ssh connection master exits on its own soon after, and the next deploy removes its socket folder', { skip: noSsh, timeout: 90_000 }, async (t) => {
  const sshd = await startSshd(t);
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sshleft-'));
  // Short: the socket path must fit 107 bytes. The deploys' temp folder is this test's own.
  const ownTmp = mkdtempSync(join(tmpdir(), 'hs-'));
  let gatePid = 0;
  let muxPid = 0;
  t.after(() => {
    for (const pid of [gatePid, muxPid]) if (pid > 0 && running(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(ownTmp, { recursive: true, force: true });
  });
  const app = join(dir, 'app');
  await mkdir(app);
  const fifo = join(dir, 'gate');
  execFileSync('mkfifo', [fifo]);
  const gated = join(dir, 'hitless-gated');
  await writeFile(gated, `#!/bin/sh\necho $$ > ${fifo}.pid\nread _ < ${fifo}\n`);
  await chmod(gated, 0o755);
  const config = async (hitless: string): Promise<string> => {
    const path = join(dir, 'deploy.json');
    await writeFile(path, JSON.stringify({
      deploy: { hosts: [{ name: 'h1', address: '127.0.0.1', appDir: app }], hitless, ssh: { user: 'root', port: sshd.port, identity: sshd.key, args: sshd.clientArgs }, uploadDir: dir },
    }));
    return path;
  };
  const artifact = await buildArtifact(dir, 'v1');
  const env = { ...process.env, TMPDIR: ownTmp };

  const deploy = spawn(process.execPath, [cli, 'deploy', artifact, '--dry-run', '--config', await config(gated)], { detached: true, stdio: 'ignore', env });
  const exited = new Promise<void>((resolve) => deploy.once('exit', () => resolve()));
  t.after(() => {
    if (deploy.exitCode === null && deploy.signalCode === null) process.kill(-deploy.pid!, 'SIGKILL');
  });
  await waitUntil(() => existsSync(`${fifo}.pid`) && readFileSync(`${fifo}.pid`, 'utf8').endsWith('\n'), 'the preflight runs on the host', 30_000);
  gatePid = Number(readFileSync(`${fifo}.pid`, 'utf8'));
  const [folder] = readdirSync(ownTmp);
  assert.match(folder ?? '', new RegExp(`^hitless-ssh-${deploy.pid}-`), 'the socket folder names its deploy');
  const [socket] = readdirSync(join(ownTmp, folder!));
  const check = spawnSync('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(ownTmp, folder!, socket!)}`, '-O', 'check', 'x'], { encoding: 'utf8' });
  muxPid = Number(/pid=(\d+)/.exec(check.stderr)?.[1] ?? 0);
  assert.ok(muxPid > 0, `the connection master answers: ${check.stderr}`);

  process.kill(-deploy.pid!, 'SIGKILL');
  await exited;
  process.kill(gatePid, 'SIGKILL'); // the preflight command on the host: its session ends
  const killedAt = Date.now();
  await waitUntil(() => !running(muxPid), `the connection master (pid ${muxPid}) exits on its own`, (CONTROL_PERSIST_S + 15) * 1000, 100);
  t.diagnostic(`connection master gone ${Date.now() - killedAt} ms after the deploy was killed`);
  assert.deepEqual(readdirSync(ownTmp), [folder], 'the killed deploy left its socket folder');

  // The next deploy (a failing preflight is enough: it opens the transport) removes it.
  const next = await runCli(['deploy', artifact, '--dry-run', '--config', await config('false')], { TMPDIR: ownTmp });
  assert.equal(next.code, 1, next.stdout + next.stderr);
  assert.deepEqual(readdirSync(ownTmp), [], 'the dead deploy\'s folder and this deploy\'s own are gone');
});
