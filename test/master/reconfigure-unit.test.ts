// The reconfigure layer (src/master/reconfigure.ts) against a fake supervisor and a fake
// configuration reader: what it hands the supervisor, what it refuses, the scale rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identities } from '../../src/master/identity.js';
import { ListenerSet, openListeners } from '../../src/master/listeners.js';
import { Reconfigurer, type ReconfigurableMaster } from '../../src/master/reconfigure.js';
import { cachedReader, fingerprintConfig, readConfig } from '../../src/master/reread.js';
import { HitlessError } from '../../src/errors.js';
import type { ConfigChange, MasterConfig } from '../../src/config/types.js';
import { failedReload } from '../../src/core/outcomes.js';
import type { MasterEvent, ReloadConfigDiff, ReloadOutcome, ScaleOutcome, StatusSnapshot } from '../../src/core/types.js';
import { fakeConfig } from '../ops/fake-master.js';

class FakeSupervisor extends EventEmitter implements ReconfigurableMaster {
  spec: MasterConfig;
  generation = 1;
  reloads: { reason: string; next: MasterConfig | undefined }[] = [];
  events: MasterEvent[] = [];
  hold: Promise<void> | undefined;
  lastReload: ReloadOutcome | undefined;
  constructor(spec: MasterConfig) {
    super();
    this.spec = spec;
    this.on('event', (e: MasterEvent) => this.events.push(e));
  }
  status(): StatusSnapshot {
    return { generation: this.generation, lastReload: this.lastReload } as StatusSnapshot;
  }
  async reload(reason: string, next?: MasterConfig, options?: { config?: () => ReloadConfigDiff }): Promise<ReloadOutcome> {
    this.reloads.push({ reason, next });
    const startedAt = Date.now();
    // A reload in flight: this one waits its turn (queued).
    await this.hold;
    // As the supervisor does as the reload begins (test/core/supervisor.test.ts checks the real one).
    const diff = options?.config?.();
    if (diff) this.announceConfig(reason, diff.changes, diff.notes);
    this.generation += 1;
    if (next) this.spec = next;
    this.lastReload = { ok: true, generation: this.generation, attempted: this.generation, reason, startedAt, durationMs: 1, forced: 0 };
    return diff ? { ...this.lastReload, changes: diff.changes, ...(diff.notes.length ? { notes: diff.notes } : {}) } : this.lastReload;
  }
  async scale(workers: number): Promise<ScaleOutcome> {
    const from = this.spec.workers;
    this.spec = { ...this.spec, workers };
    return { ok: true, generation: this.generation, from, to: workers, startedAt: 0, durationMs: 1, forced: 0 };
  }
  async stop(): Promise<void> {}
  now(): number {
    return Date.now();
  }
  announceConfig(reason: string, changes: ConfigChange[], notes: string[]): void {
    this.emit('event', { type: 'reload-config', reason, changes, notes } satisfies MasterEvent);
  }
  // As the supervisor does (test/core/supervisor.test.ts checks the real one).
  refuseReload(reason: string, startedAt: number, error: unknown, extra: Pick<ReloadOutcome, 'changes' | 'notes'> = {}): ReloadOutcome {
    const outcome = { ...failedReload({ reason, startedAt, now: this.now(), serving: this.generation, attempted: this.generation, error }), ...extra };
    this.lastReload = outcome;
    this.emit('event', { type: 'reload-done', outcome } satisfies MasterEvent);
    return outcome;
  }
}

/**
 * A socket "from systemd" (never polled: only its inherited flag is read), which makes the
 * fake configuration's empty listen list valid, as it is under socket activation.
 */
const systemdSocket = (): ListenerSet => new ListenerSet([{ name: 'http', fd: 3, address: 'fd:3', inherited: true, unlinkPath: undefined, handle: undefined }]);

function setup(initial: Partial<MasterConfig> = {}, listeners = systemdSocket()) {
  const master = new FakeSupervisor(fakeConfig({ workers: 2, ...initial }));
  let file: MasterConfig | Error = master.spec;
  const handle = new Reconfigurer({
    master,
    listeners,
    identities: new Identities(),
    source: { argv: [], cwd: '/', env: {} },
    read: async () => {
      if (file instanceof Error) throw file;
      return structuredClone(file);
    },
  });
  return { master, handle, edit: (over: Partial<MasterConfig> | Error) => (file = over instanceof Error ? over : fakeConfig({ workers: 2, ...initial, ...over })) };
}

test('an invalid file refuses the reload with the validator\'s code and message; the supervisor is never asked', async () => {
  const { master, handle, edit } = setup();
  edit(new HitlessError('ERR_CONFIG_INVALID', '"workers" in hitless.json: got "many"; expected a positive integer'));
  const o = await handle.reload('hitless reload');
  assert.equal(o.ok, false);
  assert.equal(o.generation, 1);
  assert.equal(o.attempted, 1, 'nothing was attempted');
  const message = '"workers" in hitless.json: got "many"; expected a positive integer';
  assert.deepEqual(o.error, { code: 'ERR_CONFIG_INVALID', message, output: [], problems: [message] });
  assert.equal(o.changes, undefined, 'no diff for a file that was not read');
  assert.equal(master.reloads.length, 0);
  assert.deepEqual(master.events.map((e) => e.type), ['reload-done'], 'logs and metrics see the refused reload');
});

test('an empty listen list refuses the reload as `hitless start` refuses it, unless systemd gave the master its sockets (regression: it went live with no socket)', async () => {
  const { master, handle, edit } = setup({}, openListeners([]));
  edit({ listen: [] });
  const o = await handle.reload('hitless reload');
  assert.equal(o.ok, false);
  assert.equal(o.attempted, 1, 'nothing was attempted');
  assert.equal(o.error?.code, 'ERR_CONFIG_INVALID');
  assert.match(o.error?.message ?? '', /^no listening address: add "listen": \["127\.0\.0\.1:8080"\] to hitless\.json \(an empty list is allowed only under systemd socket activation/);
  assert.equal(master.reloads.length, 0, 'the supervisor is never asked');
  const withSocket = setup();
  const ok = await withSocket.handle.reload('hitless reload');
  assert.equal(ok.ok, true, JSON.stringify(ok.error));
  assert.deepEqual(withSocket.master.reloads.map((r) => r.next?.listen), [[]]);
});

test('status shows a refused reload as the last reload until a later reload finishes', async () => {
  const { master, handle, edit } = setup();
  assert.equal(handle.status().lastReload, undefined);
  edit(new HitlessError('ERR_CONFIG_INVALID', '"workers" in hitless.json: got "many"; expected a positive integer'));
  const refused = await handle.reload('SIGHUP');
  assert.deepEqual(handle.status().lastReload, refused);
  assert.equal(handle.status().lastReload?.error?.code, 'ERR_CONFIG_INVALID');
  edit({ workers: 3 });
  const live = await handle.reload('hitless reload');
  assert.equal(live.ok, true);
  assert.deepEqual(handle.status().lastReload, master.lastReload, 'the later, successful reload replaces it');
  edit(new HitlessError('ERR_CONFIG_INVALID', 'again'));
  await handle.reload('SIGHUP');
  assert.equal(handle.status().lastReload?.error?.message, 'again');
});

test('the supervisor gets the new spec, the diff is announced before it runs, restart-only keys keep their running value', async () => {
  const { master, handle, edit } = setup({ runDir: '/run/old' });
  edit({ workers: 3, env: { GREETING: 'hi' }, runDir: '/run/new' });
  const o = await handle.reload('SIGHUP');
  assert.equal(o.ok, true);
  assert.deepEqual(o.changes?.map((c) => c.key), ['workers', 'env.GREETING', 'runDir']);
  assert.ok(o.changes?.find((c) => c.key === 'runDir')?.notApplied);
  const next = master.reloads[0]?.next;
  assert.equal(next?.workers, 3);
  assert.deepEqual(next?.env, { GREETING: 'hi' });
  assert.equal(next?.runDir, '/run/old');
  assert.deepEqual(master.events.map((e) => e.type), ['reload-config']);
  const again = await handle.reload('SIGHUP');
  assert.deepEqual(again.changes?.map((c) => c.key), ['runDir'], 'the restart-only change stays reported until a restart');
});

test('scale persists across reloads until a reload reads another "workers" value than the one in force when scaling', async () => {
  const { master, handle, edit } = setup();
  assert.equal((await handle.scale(5)).ok, true);
  let o = await handle.reload('r1');
  assert.equal(master.reloads.at(-1)?.next?.workers, 5);
  assert.deepEqual(o.changes, []);
  assert.match(o.notes?.[0] ?? '', /keeping 5 from `hitless scale` \(the configuration still says 2\)/);
  edit({ env: { A: '1' } });
  await handle.reload('r2');
  assert.equal(master.reloads.at(-1)?.next?.workers, 5, 'other edits keep the override');
  edit({ workers: 3 });
  o = await handle.reload('r3');
  assert.equal(master.reloads.at(-1)?.next?.workers, 3);
  assert.deepEqual(o.changes?.find((c) => c.key === 'workers'), { key: 'workers', from: '5', to: '3' });
  assert.match(o.notes?.[0] ?? '', /now says 3 \(it said 2 when `hitless scale 5` ran\); the override ends/);
  edit({ workers: 2 });
  await handle.reload('r4');
  assert.equal(master.reloads.at(-1)?.next?.workers, 2, 'the override is gone for good');
});

test('an override handed on by an upgrade: the new master runs the scaled count, and its unchanged file still reads as the count it says', async (t) => {
  // As runMaster starts after `hitless scale 1` with a file saying 2: the spec already
  // scaled, the override handed on, the fingerprint of the unchanged file, the real cache.
  const dir = mkdtempSync(join(tmpdir(), 'hitless-scale-upgrade-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'hitless.json');
  writeFileSync(file, '{"workers": 2}');
  const master = new FakeSupervisor(fakeConfig({ configPath: file, workers: 1 }));
  const handle = new Reconfigurer({
    master,
    listeners: systemdSocket(),
    identities: new Identities(),
    source: { argv: ['start'], cwd: dir, env: {}, fingerprint: fingerprintConfig(file, dir) },
    scale: { workers: 1, readWorkers: 2 },
  });
  let o = await handle.reload('r1');
  assert.equal(master.reloads.at(-1)?.next?.workers, 1, 'the override is kept');
  assert.deepEqual(o.changes, []);
  assert.match(o.notes?.[0] ?? '', /keeping 1 from `hitless scale` \(the configuration still says 2\)/);
  o = await handle.reload('r2');
  assert.equal(master.reloads.at(-1)?.next?.workers, 1, 'and kept again');
  assert.deepEqual(handle.scaleOverride, { workers: 1, readWorkers: 2 }, 'a later upgrade hands it on the same');
});

test('a file key a start flag overrides: the reload notes it (the edit changes nothing until a restart without the flag); an env value is not shown', async () => {
  const { handle, edit } = setup();
  edit({ flagOverrides: [{ key: 'workers', flag: '--workers', file: 3 }, { key: 'env.TOKEN', flag: '--env', file: 'secret' }] });
  const o = await handle.reload('edited');
  assert.deepEqual(o.changes, []);
  assert.deepEqual(o.notes, [
    'workers: the start flag --workers overrides the file\'s 3 (restart the master without it to use the file)',
    'env.TOKEN: the start flag --env overrides the file\'s value (restart the master without it to use the file)',
  ]);
});

test('a file key a start flag overrides whose file value is invalid: the note says a master started without the flag would refuse it, not to restart without it (regression: h16 F4)', async () => {
  const { handle, edit } = setup();
  edit({ flagOverrides: [{ key: 'workers', flag: '--workers', file: 'x', invalid: '"workers" in hitless.json: got "x"; expected a positive integer' }] });
  const o = await handle.reload('edited');
  assert.equal(o.ok, true);
  assert.deepEqual(o.notes, [
    'workers: the start flag --workers overrides the file\'s "x", which is invalid: a master started without --workers would refuse it ("workers" in hitless.json: got "x"; expected a positive integer); fix the file before dropping the flag',
  ]);
});

test('scaling back to the count the configuration says ends the override: no note at later reloads', async () => {
  const { master, handle } = setup();
  assert.equal((await handle.scale(5)).ok, true);
  assert.equal((await handle.scale(2)).ok, true);
  const o = await handle.reload('r1');
  assert.equal(master.reloads.at(-1)?.next?.workers, 2);
  assert.equal(o.notes, undefined);
});

test('scale is refused (ERR_SCALE_BUSY) while a reload is in progress; a bad count is a usage error', async () => {
  const { master, handle } = setup();
  let release = (): void => {};
  master.hold = new Promise((r) => (release = r));
  const reload = handle.reload('slow');
  // Handed to the supervisor (where it waits for the hold).
  while (master.reloads.length === 0) await new Promise((r) => setImmediate(r));
  const refused = await handle.scale(3);
  assert.equal(refused.ok, false);
  assert.equal(refused.error?.code, 'ERR_SCALE_BUSY');
  assert.equal(master.spec.workers, 2);
  release();
  await reload;
  await assert.rejects(handle.scale(0), { code: 'ERR_USAGE' });
  assert.equal((await handle.scale(1)).ok, true);
});

test('an unknown worker user refuses the reload (ERR_PRIVILEGE) before anything starts', async () => {
  const { master, handle, edit } = setup();
  edit({ user: 'no-such-user-hitless-test' });
  const o = await handle.reload('hitless reload');
  assert.equal(o.error?.code, 'ERR_PRIVILEGE');
  assert.match(o.error?.message ?? '', /no such user "no-such-user-hitless-test"/);
  assert.deepEqual(o.changes?.map((c) => c.key), ['user']);
  assert.equal(master.reloads.length, 0);
});

test('without a start command line (a master run programmatically) reloads keep the running spec', async () => {
  const master = new FakeSupervisor(fakeConfig());
  const handle = new Reconfigurer({ master, listeners: openListeners([]), identities: new Identities(), source: undefined });
  const o = await handle.reload('x');
  assert.equal(o.ok, true);
  assert.equal(master.reloads[0]?.next, undefined);
  assert.equal(o.changes, undefined);
});

test('the configuration is validated again only when the file changed since the last check (or a file appeared)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-reread-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'hitless.json');
  writeFileSync(file, '{"workers": 1}');
  let calls = 0;
  let fail = false;
  const started = fakeConfig({ configPath: file, workers: 0 });
  const read = cachedReader(dir, { config: started, fingerprint: fingerprintConfig(file, dir) }, async () => {
    calls++;
    if (fail) throw new HitlessError('ERR_CONFIG_INVALID', 'bad');
    return fakeConfig({ configPath: file, workers: calls });
  });
  const source = { argv: [], cwd: dir, env: {} };
  assert.equal((await read(source)).workers, 0, 'unchanged since start: the start configuration');
  writeFileSync(file, '{"workers": 2}');
  assert.equal((await read(source)).workers, 1, 'changed bytes are validated');
  assert.equal((await read(source)).workers, 1);
  assert.equal(calls, 1, 'same bytes: no validation child');
  writeFileSync(file, '{"workers": 3}');
  assert.equal((await read(source)).workers, 2);
  fail = true;
  writeFileSync(file, '{"workers": "x"}');
  await assert.rejects(read(source), { code: 'ERR_CONFIG_INVALID' });
  await assert.rejects(read(source), { code: 'ERR_CONFIG_INVALID' }, 'an invalid file is checked again each time');
  writeFileSync(file, '{"workers": 3}');
  assert.equal((await read(source)).workers, 2, 'back to the bytes last validated: no child');
  assert.equal(calls, 4);
  // Removed (h21 F9: the check's advice to run `hitless check --listen … -- node server.js`).
  rmSync(file);
  await assert.rejects(read(source), { code: 'ERR_CONFIG_NOT_FOUND', message: `${file}, the configuration file this master was started from, is gone: put it back, then reload` });
  assert.equal(calls, 4, 'no validation child for a file that is not there');
});

test('a master started with flags only never reads its configuration again; a hitless.json that appears later, valid or not, is only named as configPath (regression: h16 F8)', async (t) => {
  const bare = mkdtempSync(join(tmpdir(), 'hitless-reread-'));
  t.after(() => rmSync(bare, { recursive: true, force: true }));
  let calls = 0;
  const started = fakeConfig({ configPath: undefined, workers: 3 });
  const readBare = cachedReader(bare, { config: started, fingerprint: undefined }, async () => {
    calls++;
    throw new HitlessError('ERR_CONFIG_INVALID', '"workers" in hitless.json: got 0');
  });
  const source = { argv: [], cwd: bare, env: {} };
  assert.deepEqual(await readBare(source), started);
  writeFileSync(join(bare, 'hitless.json'), '{"workers": 0}');
  assert.deepEqual(await readBare(source), { ...started, configPath: join(bare, 'hitless.json') });
  assert.equal(calls, 0, 'the flags cannot change and the file is not the master\'s: nothing to validate');
});

test('a configuration read from another file than the master\'s: only the configPath change, NOT APPLIED, no other change nor note, and the running configuration goes on (regression: h16 F8)', async () => {
  const { master, handle, edit } = setup({ configPath: undefined, env: { V: 'flag' } });
  edit({ configPath: '/srv/app/hitless.json', workers: 5, env: { V: 'file' }, flagOverrides: [{ key: 'workers', flag: '--workers', file: 5 }] });
  const o = await handle.reload('hitless reload');
  assert.equal(o.ok, true);
  assert.deepEqual(o.changes?.map((c) => c.key), ['configPath']);
  // It was started with flags only: from no file at all (h20's wording nit).
  assert.match(o.changes?.[0]?.notApplied ?? '', /^the master was started with flags only and reads no file; restart it in this folder/);
  assert.equal(o.notes, undefined);
  assert.equal(master.reloads[0]?.next?.workers, 2);
  assert.deepEqual(master.reloads[0]?.next?.env, { V: 'flag' });
});

test('a reload queued behind one that applied the same edit says no configuration change: the diff is taken as it begins, against what serves then (regression: report h12 N3)', async () => {
  const { master, handle, edit } = setup();
  edit({ workers: 3 });
  let release: () => void = () => {};
  master.hold = new Promise<void>((r) => (release = r));
  const first = handle.reload('hitless reload --canary');
  const queued = handle.reload('hitless reload');
  // Read and handed over, not begun: nothing said yet (it would be against generation 1).
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(master.reloads.length, 2);
  assert.deepEqual(master.events.map((e) => e.type), []);
  release();
  const [one, two] = await Promise.all([first, queued]);
  assert.deepEqual(one.changes?.map((c) => `${c.key}: ${c.from} → ${c.to}`), ['workers: 2 → 3']);
  assert.deepEqual(two.changes, [], 'the first reload applied workers 3 already');
  // Announced as each began (the supervisor sends it to the requests following each).
  assert.deepEqual(master.events.map((e) => e.type === 'reload-config' && `${e.reason}: ${e.changes.length}`), ['hitless reload --canary: 1', 'hitless reload: 0']);
});

test('requests reach the supervisor in the order they came, even when an earlier read is slower (issue 25: the queued reload runs the last spec)', async () => {
  const master = new FakeSupervisor(fakeConfig({ workers: 2 }));
  let resolveFirst: (c: MasterConfig) => void = () => {};
  let reads = 0;
  const handle = new Reconfigurer({
    master,
    listeners: systemdSocket(),
    identities: new Identities(),
    source: { argv: [], cwd: '/', env: {} },
    // The first read (the file before an edit) takes longer than the second (after it).
    read: () => (++reads === 1 ? new Promise<MasterConfig>((r) => (resolveFirst = r)) : Promise.resolve(fakeConfig({ workers: 5 }))),
  });
  const first = handle.reload('SIGHUP');
  const second = handle.reload('SIGHUP');
  await new Promise((r) => setImmediate(r));
  assert.equal(reads, 1, 'the second request waits for its turn to read');
  resolveFirst(fakeConfig({ workers: 3 }));
  await Promise.all([first, second]);
  assert.deepEqual(master.reloads.map((r) => r.next?.workers), [3, 5], 'the edit read last is the one applied last');
  assert.equal(master.spec.workers, 5);
});

test('a configuration check killed or stuck before it answered refuses the reload as a failure to read, not as an invalid configuration (exit 2 told deploy scripts their valid file was wrong)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-reread-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', 'server.js'], listen: ['127.0.0.1:0'] }));
  // The check's own process dies at once, as under the OOM killer.
  const killer = join(dir, 'die.cjs');
  writeFileSync(killer, "process.kill(process.pid, 'SIGKILL');\n");
  const killed = await readConfig({ argv: [], cwd: dir, env: { ...process.env, NODE_OPTIONS: `--require ${killer}` } }).then(() => undefined, (err: unknown) => err);
  assert.ok(killed instanceof HitlessError);
  assert.equal(killed.code, 'ERR_RELOAD_FAILED');
  assert.match(killed.message, /^the configuration check \(pid \d+\) was killed by SIGKILL \(out of memory\?\) before it answered: the configuration was not read and nothing changed; try the reload again$/);
  const stuck = await readConfig({ argv: [], cwd: dir, env: process.env }, 1).then(() => undefined, (err: unknown) => err);
  assert.ok(stuck instanceof HitlessError);
  assert.equal(stuck.code, 'ERR_RELOAD_FAILED');
  assert.match(stuck.message, /^the configuration check did not answer within 1 ms and was stopped: /);
  // A real answer still wins: the file is valid.
  assert.deepEqual((await readConfig({ argv: [], cwd: dir, env: process.env })).command, ['node', 'server.js']);
});
