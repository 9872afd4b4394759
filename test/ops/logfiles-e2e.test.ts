import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runCli, startMaster, waitUntil } from '../helpers/master.js';

const LINES = 20_000;

test('log files end to end: every numbered worker line lands exactly once across rotated files, through a reload (regression: rotation under load)',
  { timeout: 180_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hitless-logs-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const logDir = join(dir, 'logs');
    const config = join(dir, 'hitless.json');
    writeFileSync(config, JSON.stringify({ logs: { mode: 'file', dir: logDir, maxSize: '64k', keep: 200, tag: true } }));
    const master = await startMaster(t, {
      command: [process.execPath, fixture('ops/app.js')],
      workers: 2,
      args: ['--config', config],
      env: { LINES: String(LINES) },
    });
    assert.equal((await master.reload()).code, 0);
    assert.equal((await master.stop()).code, 0);
    assert.doesNotMatch(master.stdout + master.stderr, /g=\d+ w=\d+ n=/, 'file mode forwards nothing to the master\'s own output');

    const files = readdirSync(logDir).filter((n) => n.startsWith('workers.log'));
    assert.ok(files.length > 5, `rotated several times: ${files.join(' ')}`);
    const count = new Map<string, number>();
    let done = 0;
    for (const name of files) {
      for (const line of readFileSync(join(logDir, name), 'utf8').split('\n')) {
        if (!line) continue;
        const m = /^\[(\d+)\.(\d+)( stderr)?\] (?:g=(\d+) w=(\d+) n=(\d+)|done g=(\d+) w=(\d+))$/.exec(line);
        assert.ok(m, `unexpected line ${JSON.stringify(line)} in ${name}`);
        if (m[7] !== undefined) {
          done++;
          continue;
        }
        assert.equal(m[1], m[4], 'tag generation matches the worker\'s own');
        assert.equal(m[2], m[5], 'tag slot matches the worker\'s own');
        assert.equal(Boolean(m[3]), Number(m[6]) % 2 === 1, 'odd lines came on stderr');
        const key = `${m[4]}.${m[5]}.${m[6]}`;
        count.set(key, (count.get(key) ?? 0) + 1);
      }
    }
    const perWorker = new Map<string, number>();
    for (const k of count.keys()) { const gw = k.split('.').slice(0, 2).join('.'); perWorker.set(gw, (perWorker.get(gw) ?? 0) + 1); }
    assert.equal(done, 4, `two workers in each of two generations finished printing; lines per worker: ${JSON.stringify([...perWorker])}`);
    const workers = [...new Set([...count.keys()].map((k) => k.split('.').slice(0, 2).join('.')))].sort();
    assert.equal(workers.length, 4, `two workers per generation: ${workers.join(' ')}`);
    assert.deepEqual(workers.map((w) => w.split('.')[0]), ['1', '1', '2', '2']);
    for (const gw of workers) {
      for (let i = 0; i < LINES; i++) {
        const n = count.get(`${gw}.${i}`);
        if (n !== 1) assert.fail(`line ${gw} n=${i} appears ${n ?? 0} times`);
      }
    }
    assert.equal(count.size, 4 * LINES);
  });

test('log files end to end: lines printed while stopping are all on disk after the master exits (regression: worker exit seen before its pipe was read)',
  { timeout: 120_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hitless-logs-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const logDir = join(dir, 'logs');
    const config = join(dir, 'hitless.json');
    writeFileSync(config, JSON.stringify({ logs: { mode: 'file', dir: logDir, maxSize: '1M', keep: 20, tag: false } }));
    const master = await startMaster(t, {
      command: [process.execPath, fixture('ops/loud-exit.js')],
      args: ['--config', config],
      env: { LINES: '20000' },
    });
    assert.equal((await master.stop()).code, 0);
    const seen = new Set<number>();
    for (const name of readdirSync(logDir)) {
      for (const line of readFileSync(join(logDir, name), 'utf8').split('\n')) {
        const m = /^bye n=(\d+)$/.exec(line);
        if (m) seen.add(Number(m[1]));
      }
    }
    assert.equal(seen.size, 20000, `${20000 - seen.size} lines printed while stopping are missing`);
  });

test('log files end to end: a log folder deleted while the master runs is created again and gets the new lines, which hitless logs shows (regression: output went to the deleted file until the next rotation)',
  { timeout: 60_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hitless-logs-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const logDir = join(dir, 'logs');
    const config = join(dir, 'hitless.json');
    writeFileSync(config, JSON.stringify({ logs: { mode: 'file', dir: logDir, maxSize: '10M', keep: 3, tag: false } }));
    const master = await startMaster(t, {
      command: [process.execPath, fixture('ops/app.js')],
      args: ['--config', config],
      env: { LOG_REQUESTS: '1' },
    });
    const file = join(logDir, 'workers.log');
    const has = (text: string) => (): boolean => existsSync(file) && readFileSync(file, 'utf8').includes(text);
    await (await fetch(master.url('/before'))).text();
    await waitUntil(has('req /before'), 'the first line is in workers.log');

    rmSync(logDir, { recursive: true });
    // Lines of the second before the removal is seen go to the deleted file: keep asking
    // until one reaches the new file (bounded by waitUntil).
    let n = 0;
    await waitUntil(async () => {
      await (await fetch(master.url(`/after-${n++}`))).text();
      return has('req /after-')();
    }, 'a line written after the deletion is in a new workers.log', 15_000, 50);
    const warned = await master.waitEvent((r) => r.level === 'warn' && /workers\.log was removed; writing to .* again/.test(r.msg));
    assert.equal(warned.path, file);

    await (await fetch(master.url('/shown'))).text();
    await waitUntil(has('req /shown'), 'the last line is in workers.log');
    const logs = await runCli(['logs', '-n', '3', '--config', config]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /req \/shown/);
  });
