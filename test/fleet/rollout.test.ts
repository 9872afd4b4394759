// The rollout's decisions (order, batches, stop, what is rolled back) against scripted hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tar from 'tar';
import { isHitlessError } from '../../src/errors.js';
import type { ProbeResult } from '../../src/fleet/health.js';
import { describeFailure, formatTable } from '../../src/fleet/report.js';
import { deployFleet } from '../../src/fleet/rollout.js';
import { REMOVED_MARKER, STATUS_MARKER } from '../../src/fleet/scripts.js';
import type { RemoteResult } from '../../src/fleet/transport.js';
import type { FleetConfig, FleetEvent, FleetHost } from '../../src/fleet/types.js';

interface FakeHost {
  current: string | undefined;
  /** What goes wrong there. */
  upload?: 'checksum';
  release?: 'rolled-back' | 'lost' | 'busy';
  rollback?: 'fail';
  preflight?: Partial<Record<'master' | 'lock' | 'missing' | 'unreachable', boolean>>;
  /** Probe answers in order (the preflight asks first); 200 once they run out. */
  health?: ProbeResult[];
}

/** Scripted hosts: answers each remote script by what it is, and logs `host:step`. */
function fakeFleet(hosts: Record<string, FakeHost>) {
  const log: string[] = [];
  /** Files the cleanup of a dead deploy's leftovers was asked to remove. */
  const cleaned: string[] = [];
  const ok = (stdout = ''): RemoteResult => ({ code: 0, signal: null, stdout, stderr: '' });
  const run = async (host: FleetHost, script: string): Promise<RemoteResult> => {
    const h = hosts[host.name] as FakeHost;
    await new Promise((r) => setImmediate(r)); // hosts of a batch interleave, as over ssh
    if (script.includes(STATUS_MARKER)) {
      log.push(`${host.name}:preflight`);
      const p = h.preflight ?? {};
      if (p.unreachable) return { code: 255, signal: null, stdout: '', stderr: `ssh: connect to host ${host.address} port 22: Connection refused\n` };
      const status = p.missing ? 'sh: 1: hitless: not found' : p.master ? 'hitless: no master is running' : JSON.stringify({ version: '0.1.0', generation: 1 });
      const exit = p.missing ? 127 : p.master ? 1 : 0;
      return ok(`appdir=ok\n${p.lock ? 'lock=4242\n' : ''}current=${h.current ? `releases/${h.current}` : ''}\nupload=ok\nsum=ok\nstatus-exit=${exit}\n${STATUS_MARKER}\n${status}\n`);
    }
    if (script.includes('cat > ')) {
      log.push(`${host.name}:upload`);
      if (h.upload === 'checksum') return { code: 65, signal: null, stdout: '', stderr: 'checksum mismatch on arrival: expected abc, got def\n' };
      return ok();
    }
    if (script.includes(' release ')) {
      log.push(`${host.name}:release`);
      if (h.release === 'lost') return { code: 255, signal: null, stdout: '', stderr: 'Connection to 10.0.0.2 closed by remote host.\n' };
      if (h.release === 'busy') {
        const message = 'another release operation (pid 7) is in progress in /srv/app; wait for it to finish and try again';
        return { code: 1, signal: null, stdout: `${JSON.stringify({ ok: false, error: { code: 'ERR_RELEASE_BUSY', message } })}\n`, stderr: `hitless: ${message}\n` };
      }
      if (h.release === 'rolled-back') {
        return { code: 1, signal: null, stdout: JSON.stringify({ status: 'rolled-back', code: 'ERR_RELEASE_ROLLED_BACK', message: 'release v2 did not go live: worker 2.1 exited', outcome: { error: { code: 'ERR_WORKER_EXITED' } }, output: ['Error: boom'] }), stderr: '' };
      }
      h.current = 'v2';
      return ok(JSON.stringify({ status: 'live', id: 'v2', previous: 'v1', outcome: { generation: 2, durationMs: 80 } }));
    }
    if (script.includes(' rollback ')) {
      log.push(`${host.name}:rollback`);
      if (h.rollback === 'fail') return { code: 1, signal: null, stdout: JSON.stringify({ status: 'rolled-back', code: 'ERR_RELEASE_ROLLED_BACK', message: 'release v1 did not go live' }), stderr: '' };
      h.current = 'v1';
      return ok(JSON.stringify({ status: 'live', id: 'v1', outcome: { generation: 3 } }));
    }
    if (script.includes('readlink')) return ok(h.current ? `releases/${h.current}\n` : '');
    if (script.includes(REMOVED_MARKER)) {
      log.push(`${host.name}:cleanup`);
      cleaned.push(...[...script.matchAll(/rm -f '([^']+)'/g)].map((m) => m[1] as string));
      return ok();
    }
    throw new Error(`unexpected script: ${script}`);
  };
  const probe = async (url: string): Promise<ProbeResult> => {
    const name = new URL(url).hostname;
    return hosts[name]?.health?.shift() ?? { ok: true, status: 200 };
  };
  return { log, cleaned, run, probe };
}

/** A small release archive in `dir`; `build` may add to its folder first (a link, say). */
async function packArtifact(dir: string, name: string, build?: (folder: string) => Promise<unknown>): Promise<string> {
  const folder = join(dir, `build-${name}`);
  await mkdir(folder);
  await writeFile(join(folder, 'server.mjs'), 'export {};\n');
  await build?.(folder);
  const file = join(dir, name);
  await tar.c({ gzip: true, file, cwd: folder, portable: true }, ['.']);
  return file;
}

async function setup(t: { after(fn: () => unknown): void }, names: string[], batch = 1) {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-rollout-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const artifact = await packArtifact(dir, 'app.tgz');
  const config: FleetConfig = {
    hosts: names.map((name) => ({ name, address: name, user: undefined, port: undefined, identity: undefined, appDir: '/srv/app', health: `http://${name}:8080/healthz` })),
    hitless: 'hitless', sshArgs: [], exec: undefined, batch, settleMs: 0, uploadDir: '/tmp', configPath: join(dir, 'hitless.json'),
  };
  return { dir, artifact, config };
}

const v1 = (extra: Partial<FakeHost> = {}): FakeHost => ({ current: 'v1', ...extra });

test('rollout: canary alone, then batches side by side; every host live', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b', 'c', 'd', 'e'], 2);
  const fleet = fakeFleet({ a: v1(), b: v1(), c: v1(), d: v1(), e: v1() });
  const events: FleetEvent[] = [];
  const result = await deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe, onEvent: (e) => events.push(e) });
  assert.equal(result.status, 'live');
  assert.deepEqual(result.batches, [['a'], ['b', 'c'], ['d', 'e']]);
  assert.deepEqual(fleet.log.filter((l) => !l.endsWith('preflight')), [
    'a:upload', 'a:release', 'b:upload', 'c:upload', 'b:release', 'c:release', 'd:upload', 'e:upload', 'd:release', 'e:release',
  ]);
  assert.deepEqual(result.hosts.map((h) => [h.name, h.before, h.after, h.outcome]), ['a', 'b', 'c', 'd', 'e'].map((n) => [n, 'v1', 'v2', 'live']));
  assert.match(events.map((e) => e.text).join('\n'), /to 5 hosts: a as the canary, then 4 more in batches of 2/);
});

test('rollout: a host failing its health check after going live is rolled back with the hosts before it, newest first; later hosts untouched', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b', 'c']);
  const fleet = fakeFleet({ a: v1(), b: v1({ health: [{ ok: true, status: 200 }, { ok: false, status: 503 }] }), c: v1() });
  const result = await deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe });
  assert.equal(result.status, 'failed');
  assert.deepEqual(result.failure, { host: 'b', step: 'health', code: 'ERR_DEPLOY_HEALTH', message: 'health http://b:8080/healthz answered status 503 (probe 1 of the 0 ms settle time)' });
  assert.deepEqual(fleet.log.filter((l) => !l.endsWith('preflight')), ['a:upload', 'a:release', 'b:upload', 'b:release', 'b:rollback', 'a:rollback']);
  assert.deepEqual(result.hosts.map((h) => [h.name, h.before, h.after, h.outcome, h.rolledBack]), [
    ['a', 'v1', 'v1', 'rolled-back', true], ['b', 'v1', 'v1', 'failed', true], ['c', 'v1', 'v1', 'untouched', undefined],
  ]);
  assert.match(describeFailure(result), /^deploy v2 failed on b at health \(ERR_DEPLOY_HEALTH: .*\); rolled back a, b; no host runs v2$/);
  assert.match(formatTable(result), /^b +v1 +v1 +FAILED +\d+ ms +health ERR_DEPLOY_HEALTH: health http:\/\/b:8080\/healthz answered status 503/m);
});

test('rollout: a checksum mismatch on the canary stops before any release; nothing to roll back', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b']);
  const fleet = fakeFleet({ a: v1({ upload: 'checksum' }), b: v1() });
  const result = await deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe });
  assert.equal(result.status, 'failed');
  assert.deepEqual(fleet.log.filter((l) => !l.endsWith('preflight')), ['a:upload']);
  assert.deepEqual(result.hosts.map((h) => h.outcome), ['failed', 'untouched']);
  assert.equal(result.hosts[0]?.code, 'ERR_DEPLOY_UPLOAD');
  assert.match(describeFailure(result), /checksum mismatch on arrival.*nothing to roll back; no host runs v2/);
});

test('rollout: a release hitless switched back itself is not rolled back again; its workers\' output is kept', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b', 'c']);
  const fleet = fakeFleet({ a: v1(), b: v1({ release: 'rolled-back' }), c: v1() });
  const result = await deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe });
  assert.deepEqual(fleet.log.filter((l) => !l.endsWith('preflight')), ['a:upload', 'a:release', 'b:upload', 'b:release', 'a:rollback']);
  assert.deepEqual(result.hosts[1], { name: 'b', before: 'v1', after: 'v1', outcome: 'failed', ms: result.hosts[1]?.ms, step: 'release', code: 'ERR_WORKER_EXITED', message: 'release v2 did not go live: worker 2.1 exited', output: ['Error: boom'] });
});

test('rollout: a release refused by the host (busy) is not rolled back, a connection lost mid-release is', async (t) => {
  const busy = await setup(t, ['a', 'b']);
  const f1 = fakeFleet({ a: v1(), b: v1({ release: 'busy' }) });
  const r1 = await deployFleet({ config: busy.config, artifact: busy.artifact, id: 'v2', run: f1.run, probe: f1.probe });
  assert.deepEqual(f1.log.filter((l) => l.endsWith('rollback')), ['a:rollback']);
  assert.match(r1.hosts[1]?.message ?? '', /^another release operation \(pid 7\)/);
  assert.equal(r1.hosts[1]?.code, 'ERR_RELEASE_BUSY', 'the host\'s own code, not ERR_DEPLOY_REMOTE');

  const lost = await setup(t, ['a', 'b']);
  const f2 = fakeFleet({ a: v1(), b: v1({ release: 'lost' }) });
  const r2 = await deployFleet({ config: lost.config, artifact: lost.artifact, id: 'v2', run: f2.run, probe: f2.probe });
  assert.deepEqual(f2.log.filter((l) => l.endsWith('rollback')), ['b:rollback', 'a:rollback']);
  assert.equal(r2.hosts[1]?.code, 'ERR_DEPLOY_REMOTE');
  assert.match(r2.hosts[1]?.message ?? '', /lost the connection during the release/);
});

test('rollout: a host that cannot be rolled back is reported as needing a person', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b', 'c']);
  const fleet = fakeFleet({ a: v1({ rollback: 'fail' }), b: v1({ health: [{ ok: true, status: 200 }, { ok: false, error: 'ECONNREFUSED' }] }), c: { current: undefined } });
  const result = await deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe });
  assert.equal(result.hosts[0]?.outcome, 'rollback-failed');
  assert.equal(result.hosts[0]?.after, 'v2');
  assert.match(result.hosts[0]?.message ?? '', /rollback to v1 failed: release v1 did not go live/);
  assert.match(describeFailure(result), /rolled back b.*COULD NOT ROLL BACK a: see the table/);
});

test('preflight: every problem on every host is listed at once and nothing is uploaded', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b', 'c', 'd', 'e']);
  const fleet = fakeFleet({
    a: v1(), b: v1({ preflight: { unreachable: true } }), c: v1({ preflight: { master: true, lock: true } }),
    d: v1({ preflight: { missing: true } }), e: v1({ health: [{ ok: false, status: 503 }] }),
  });
  await assert.rejects(deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe }), (err) => {
    assert.ok(isHitlessError(err, 'ERR_DEPLOY_PREFLIGHT'));
    assert.deepEqual(err.details.problems, [
      'b: cannot reach it over ssh (b): ssh: connect to host b port 22: Connection refused',
      'c: a release operation (pid 4242) is running in /srv/app; wait for it to finish',
      'c: no hitless master answers for /srv/app (no master is running); start it (systemd, hitless start) first: a deploy reloads a running master',
      'd: hitless is not installed in /srv/app, or `hitless` cannot run it there (sh: 1: hitless: not found); install the hitless package in that app folder (docs/deploy.md), or set deploy.hitless to a command that runs it',
      'e: health http://e:8080/healthz answers status 503 before the deploy; fix the host first (or its deploy.health URL)',
    ]);
    assert.match(err.message, /^preflight failed on 4 of 5 hosts, nothing was changed: b: cannot reach it/);
    return true;
  });
  assert.deepEqual(fleet.log.filter((l) => !l.endsWith('preflight')), []);
});

test('dry run: preflight and plan only, no lock taken, nothing uploaded', async (t) => {
  const { artifact, config, dir } = await setup(t, ['a', 'b']);
  await writeFile(join(dir, '.hitless-deploy.lock'), JSON.stringify({ pid: process.pid, user: 'x', machine: 'y', id: 'v9', artifact: 'x.tgz', startedAt: 0 }));
  const fleet = fakeFleet({ a: v1(), b: v1() });
  const events: string[] = [];
  const result = await deployFleet({ config, artifact, id: 'v2', dryRun: true, run: fleet.run, probe: fleet.probe, onEvent: (e) => events.push(e.text) });
  assert.equal(result.status, 'dry-run');
  assert.deepEqual(fleet.log, ['a:preflight', 'b:preflight']);
  assert.deepEqual(events.slice(-2), ['would release to the canary a', 'would release batch 1: b']);
});

test('deploy lock: a second deploy is told who holds it; a lock left by a dead deploy is taken over', async (t) => {
  const { artifact, config, dir } = await setup(t, ['a']);
  const lock = join(dir, '.hitless-deploy.lock');
  const fleet = fakeFleet({ a: v1() });
  const { hostname } = await import('node:os');
  await writeFile(lock, JSON.stringify({ pid: process.pid, user: 'alice', machine: hostname(), id: 'v7', artifact: 'build-7.tgz', startedAt: Date.now() - 42_000 }));
  const said: string[] = [];
  await assert.rejects(deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe, onEvent: (e) => said.push(e.text) }), (err) => {
    assert.ok(isHitlessError(err, 'ERR_DEPLOY_BUSY'));
    assert.match(err.message, new RegExp(`^another deploy is running: release v7 \\(build-7\\.tgz\\) by alice on ${hostname()}, pid ${process.pid}, started 42 s ago; wait for it`));
    return true;
  });
  assert.deepEqual(fleet.log, [], 'a busy deploy does not even run the preflight');
  assert.deepEqual(said, [], 'nor says it is starting');

  const gone = spawnSync(process.execPath, ['-e', '0']).pid as number;
  await writeFile(lock, JSON.stringify({ pid: gone, user: 'alice', machine: hostname(), id: 'v7', artifact: 'build-7.tgz', startedAt: 0 }));
  let heldBy: string | undefined;
  const result = await deployFleet({
    config, artifact, id: 'v2', probe: fleet.probe,
    run: async (host, script) => {
      heldBy ??= JSON.parse(await readFile(lock, 'utf8')).id as string;
      return fleet.run(host, script);
    },
  });
  assert.equal(result.status, 'live');
  assert.equal(heldBy, 'v2', 'the stale lock was replaced by this deploy\'s own');
  await assert.rejects(readFile(lock), { code: 'ENOENT' });
  assert.deepEqual(fleet.log, ['a:preflight', 'a:cleanup', 'a:upload', 'a:release'], 'the dead deploy\'s upload is looked for after the preflight, before anything else');
  assert.deepEqual(fleet.cleaned, ['/tmp/hitless-deploy-v7-a.tgz', '/tmp/hitless-deploy-v7-a.tgz.part']);
});

test('deploy lock: a host the dead deploy had switched (current is its release, no health check seen) is named, then released and checked', async (t) => {
  const { artifact, config, dir } = await setup(t, ['a', 'b']);
  const fleet = fakeFleet({ a: { current: 'v7' }, b: v1() });
  const { hostname } = await import('node:os');
  const gone = spawnSync(process.execPath, ['-e', '0']).pid as number;
  await writeFile(join(dir, '.hitless-deploy.lock'), JSON.stringify({ pid: gone, user: 'alice', machine: hostname(), id: 'v7', artifact: 'build-7.tgz', startedAt: 0 }));
  const said: string[] = [];
  const result = await deployFleet({ config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe, onEvent: (e) => said.push(`${e.level} ${e.host ?? '-'} ${e.text}`) });
  assert.equal(result.status, 'live');
  assert.deepEqual(said.filter((l) => l.includes('switched by the deploy that died')), ['warn a current is v7, switched by the deploy that died before its health check; this deploy releases v2 there and checks its health']);
  // Its upload was already gone (its release on the host removed it): said, not left unsaid (h17 F4).
  assert.ok(said.includes('info - none of its uploads was left (a release it started on a host removes its upload when it ends)'), said.join('\n'));
  assert.ok(said.findIndex((l) => l.includes('switched by the deploy that died')) < said.findIndex((l) => l.startsWith('info a upload ')), said.join('\n'));
});

test('rollout: an interrupt (Ctrl-C) lets the running batch finish, starts no other, and rolls back what was done', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b', 'c']);
  const fleet = fakeFleet({ a: v1(), b: v1(), c: v1() });
  const interrupt = new AbortController();
  const result = await deployFleet({
    config, artifact, id: 'v2', run: fleet.run, probe: fleet.probe, signal: interrupt.signal,
    onEvent: (e) => {
      if (e.host === 'a' && e.text.startsWith('hitless release')) interrupt.abort(new Error('SIGINT'));
    },
  });
  assert.equal(result.status, 'failed');
  assert.deepEqual(fleet.log.filter((l) => !l.endsWith('preflight')), ['a:upload', 'a:release', 'a:rollback']);
  assert.deepEqual(result.hosts.map((h) => [h.name, h.after, h.outcome]), [['a', 'v1', 'rolled-back'], ['b', 'v1', 'untouched'], ['c', 'v1', 'untouched']]);
  assert.equal(describeFailure(result), 'deploy v2 interrupted (SIGINT) before b; rolled back a; no host runs v2');
});

test('an artifact that is not a readable archive, or holds an unsafe entry, is refused before any host is touched, --dry-run included', async (t) => {
  const { dir, config } = await setup(t, ['a', 'b']);
  const notTar = join(dir, 'bad.tgz');
  await writeFile(notTar, 'notatar\n');
  const escaping = await packArtifact(dir, 'escaping.tgz', (folder) => symlink('/etc', join(folder, 'etc')));
  for (const dryRun of [true, false]) {
    const fleet = fakeFleet({ a: v1(), b: v1() });
    await assert.rejects(deployFleet({ config, artifact: notTar, id: 'v2', dryRun, run: fleet.run, probe: fleet.probe }), (err) => {
      assert.ok(isHitlessError(err, 'ERR_USAGE'), String(err));
      assert.match(err.message, new RegExp(`^artifact ${notTar} is not a readable \\.tgz/\\.tar archive \\(.+\\); pack the build first: \`tar -czf app\\.tgz -C build \\.\`$`));
      return true;
    });
    await assert.rejects(deployFleet({ config, artifact: escaping, id: 'v2', dryRun, run: fleet.run, probe: fleet.probe }), (err) => {
      assert.ok(isHitlessError(err, 'ERR_RELEASE_UNSAFE_ARCHIVE'), String(err));
      assert.match(err.message, new RegExp(`^artifact ${escaping}: unsafe archive entry "\\./etc": symlink target /etc is absolute; \`hitless release\` on each host would refuse it`));
      return true;
    });
    assert.deepEqual(fleet.log, [], `no host was touched (dryRun: ${dryRun})`);
    await assert.rejects(readFile(join(dir, '.hitless-deploy.lock')), { code: 'ENOENT' });
  }
});

test('rollback goes by the real batches, newest batch first: a later batch\'s host is switched back before the canary starts its rollback, not beside it', async (t) => {
  const { artifact, config } = await setup(t, ['a', 'b', 'c'], 2);
  // b's release does not go live (hitless switches it back itself); c, in the same batch, went live.
  const fleet = fakeFleet({ a: v1(), b: v1({ release: 'rolled-back' }), c: v1() });
  const steps: string[] = [];
  const run = async (host: FleetHost, script: string): Promise<RemoteResult> => {
    const rollback = script.includes(' rollback ');
    if (rollback) steps.push(`${host.name}:rollback started`);
    const r = await fleet.run(host, script);
    if (rollback) steps.push(`${host.name}:rollback done`);
    return r;
  };
  const events: string[] = [];
  const result = await deployFleet({ config, artifact, id: 'v2', run, probe: fleet.probe, onEvent: (e) => events.push(e.text) });
  assert.equal(result.status, 'failed');
  assert.deepEqual(steps, ['c:rollback started', 'c:rollback done', 'a:rollback started', 'a:rollback done']);
  assert.ok(events.includes('stopped; rolling back c, a'), events.join('\n'));
  assert.deepEqual(result.hosts.map((h) => [h.name, h.after, h.outcome]), [['a', 'v1', 'rolled-back'], ['b', 'v1', 'failed'], ['c', 'v1', 'rolled-back']]);
});
