import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatLine, startLogFiles, LOG_FILE_NAME } from '../../src/ops/logfiles.js';
import { followLog, readLastLines } from '../../src/ops/logtail.js';
import { LogStream, type CreateStream } from '../../src/ops/log-stream.js';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { FakeMaster, fakeConfig, memoryLogger } from './fake-master.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function allLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    if (!name.startsWith(LOG_FILE_NAME)) continue;
    out.push(...(await readFile(join(dir, name), 'utf8')).split('\n').filter(Boolean));
  }
  return out;
}

test('formatLine: tags generation.slot and stderr only when asked', () => {
  assert.equal(formatLine({ generation: 3, slot: 1, stream: 'stdout', line: 'hi' }, true), '[3.1] hi\n');
  assert.equal(formatLine({ generation: 3, slot: 2, stream: 'stderr', line: 'boom' }, true), '[3.2 stderr] boom\n');
  assert.equal(formatLine({ generation: 3, slot: 2, stream: 'stderr', line: 'boom' }, false), 'boom\n');
});

test('logfiles: rotation under a burst loses no line and duplicates none (regression: rotation under load)', async (t) => {
  const dir = await tempDir(t);
  const master = new FakeMaster();
  const logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 8 * 1024, keep: 200, tag: true } }), master, memoryLogger());
  const N = 20_000;
  // Synchronous burst: far faster than the disk, so rotations happen with writes queued.
  for (let i = 0; i < N; i++) {
    master.emitEvent({ type: 'worker-output', generation: 1, slot: 1 + (i % 2), stream: i % 7 ? 'stdout' : 'stderr', line: `line ${i}` });
  }
  await logs.close();
  assert.equal(master.listenerCount('event'), 0);

  const files = (await readdir(dir)).filter((n) => n.startsWith(LOG_FILE_NAME));
  assert.ok(files.length > 10, `expected many rotated files, got ${files.length}`);
  const seen = new Map<number, number>();
  for (const line of await allLines(dir)) {
    const m = /^\[1\.(\d)( stderr)?\] line (\d+)$/.exec(line);
    assert.ok(m, `unexpected line ${JSON.stringify(line)}`);
    const i = Number(m[3]);
    assert.equal(Number(m[1]), 1 + (i % 2));
    assert.equal(Boolean(m[2]), i % 7 === 0);
    seen.set(i, (seen.get(i) ?? 0) + 1);
  }
  assert.equal(seen.size, N);
  for (const [i, n] of seen) assert.equal(n, 1, `line ${i} written ${n} times`);

  // hitless logs -n: the newest lines, in order, across file boundaries.
  const last = await readLastLines(dir, 200, 1000);
  assert.equal(last.length, 1000);
  assert.deepEqual(last.map((l) => Number(/line (\d+)$/.exec(l)?.[1])), Array.from({ length: 1000 }, (_, k) => N - 1000 + k));
});

test('logfiles: keep bounds the number of rotated files', async (t) => {
  const dir = await tempDir(t);
  const master = new FakeMaster();
  const logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 1024, keep: 3, tag: false } }), master, memoryLogger());
  for (let i = 0; i < 2000; i++) master.emitEvent({ type: 'worker-output', generation: 1, slot: 1, stream: 'stdout', line: `x${i}` });
  await logs.close();
  assert.deepEqual((await readdir(dir)).sort(), [LOG_FILE_NAME, `${LOG_FILE_NAME}.1`, `${LOG_FILE_NAME}.2`, `${LOG_FILE_NAME}.3`]);
  const lines = await allLines(dir);
  assert.ok(lines.includes('x1999'), 'the newest line is kept');
  assert.ok(!lines.includes('x0'), 'the oldest lines were rotated away');
});

test('logfiles: a lower keep removes the rotated files beyond it when the files start (reload or restart)', async (t) => {
  const dir = await tempDir(t);
  const master = new FakeMaster();
  let logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 1024, keep: 6, tag: false } }), master, memoryLogger());
  for (let i = 0; i < 2000; i++) master.emitEvent({ type: 'worker-output', generation: 1, slot: 1, stream: 'stdout', line: `x${i}` });
  await logs.close();
  assert.equal((await readdir(dir)).length, 7);
  const logger = memoryLogger();
  logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 1024, keep: 2, tag: false } }), master, logger);
  await logs.close();
  assert.deepEqual((await readdir(dir)).sort(), [LOG_FILE_NAME, `${LOG_FILE_NAME}.1`, `${LOG_FILE_NAME}.2`]);
  assert.ok(logger.lines.some((l) => l.includes('removed rotated log files beyond logs.keep')), logger.lines.join('\n'));
  // A gap in the numbering (a file removed by hand) does not hide the ones after it; other names are left alone.
  await writeFile(join(dir, `${LOG_FILE_NAME}.9`), 'old\n');
  await writeFile(join(dir, `${LOG_FILE_NAME}.9.gz`), 'shipped\n');
  logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 1024, keep: 2, tag: false } }), master, memoryLogger());
  await logs.close();
  assert.deepEqual((await readdir(dir)).sort(), [LOG_FILE_NAME, `${LOG_FILE_NAME}.1`, `${LOG_FILE_NAME}.2`, `${LOG_FILE_NAME}.9.gz`]);
});

test('logfiles: followLog sees every appended line across rotations', async (t) => {
  const dir = await tempDir(t);
  const master = new FakeMaster();
  const logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 2048, keep: 50, tag: false } }), master, memoryLogger());
  t.after(() => logs.close());
  master.emitEvent({ type: 'worker-output', generation: 1, slot: 1, stream: 'stdout', line: 'before follow' });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const got: string[] = [];
  let waitFor: { line: string; resolve: () => void } | undefined;
  const seen = (line: string): Promise<void> => new Promise((resolve) => { waitFor = { line, resolve }; });
  let opened!: () => void;
  const open = new Promise<void>((resolve) => { opened = resolve; });
  const following = followLog(dir, (line) => {
    got.push(line);
    if (line === waitFor?.line) waitFor.resolve();
  }, ac.signal, { pollMs: 20, onOpen: () => opened() });
  await open;
  // Batches of 100 lines (~500 bytes): at most one rotation between two polls.
  const BATCHES = 24;
  for (let b = 0; b < BATCHES; b++) {
    const last = seen(`f${b}-99`);
    for (let i = 0; i < 100; i++) master.emitEvent({ type: 'worker-output', generation: 1, slot: 1, stream: 'stdout', line: `f${b}-${i}` });
    await last;
  }
  ac.abort();
  await following;
  const expected = Array.from({ length: BATCHES * 100 }, (_, k) => `f${Math.floor(k / 100)}-${k % 100}`);
  assert.deepEqual(got.filter((l) => l.startsWith('f')), expected);
  assert.ok((await readdir(dir)).includes(`${LOG_FILE_NAME}.4`), 'several rotations happened while following');
});

test('logfiles: a deleted folder or a file moved away is created again and gets the next lines, with one warning each (regression: lines went to the removed file)', async (t) => {
  const base = await tempDir(t);
  const dir = join(base, 'logs');
  const file = join(dir, LOG_FILE_NAME);
  const master = new FakeMaster();
  const logger = memoryLogger();
  const logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 1 << 20, keep: 3, tag: false } }), master, logger, { checkMs: 0 });
  t.after(() => logs.close());
  const line = (text: string): void => master.emitEvent({ type: 'worker-output', generation: 1, slot: 1, stream: 'stdout', line: text });
  const onDisk = async (text: string): Promise<void> => {
    // The stream opens and writes asynchronously: a bounded poll of the file.
    for (let i = 0; i < 500; i++) {
      if ((await readFile(file, 'utf8').catch(() => '')).includes(text)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.fail(`${text} never reached ${file}; log: ${logger.lines.join('\n')}`);
  };
  line('one');
  await onDisk('one');
  await rm(dir, { recursive: true });
  line('two');
  await onDisk('two');
  assert.equal((await readFile(file, 'utf8')), 'two\n');
  assert.equal(logger.lines.filter((l) => l.includes(`${file} was removed; writing to ${file} again`)).length, 1, logger.lines.join('\n'));

  await rename(file, join(dir, 'moved.log'));
  line('three');
  await onDisk('three');
  line('four');
  await onDisk('four');
  assert.equal((await readFile(file, 'utf8')), 'three\nfour\n');
  assert.equal((await readFile(join(dir, 'moved.log'), 'utf8')), 'two\n');
  assert.equal(logger.lines.filter((l) => l.includes('was removed')).length, 2, logger.lines.join('\n'));
});

test('logfiles: a log file that failed (a full disk) is opened again on the next line after retryMs; one error per outage, one warning with the lines dropped once it is written again (regression: output stayed off until a reload changed a logs.* key)', async (t) => {
  const dir = await tempDir(t);
  const logger = memoryLogger();
  let full = false;
  let clock = 0;
  const written: string[] = [];
  const streams: Writable[] = [];
  const create: CreateStream = () => {
    const w = new Writable({
      write(chunk: Buffer, _enc, done) {
        if (full) return done(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
        written.push(String(chunk));
        done();
      },
    });
    streams.push(w);
    return w;
  };
  const out = new LogStream(create, { dir, name: LOG_FILE_NAME, maxSize: 1 << 20, keep: 2, retryMs: 5000, now: () => clock }, logger);
  const errored = async (): Promise<void> => void (await once(streams.at(-1)!, 'error'));
  const errors = (): number => logger.lines.filter((l) => l.includes('worker log file failed')).length;
  assert.equal(out.write('a\n'), true);
  full = true;
  const first = errored();
  out.write('b\n');
  await first;
  assert.equal(errors(), 1);
  assert.equal(out.write('c\n'), false, 'refused while off');
  clock = 5000;
  // Tried again: the disk is still full, which is the same outage.
  assert.equal(out.write('d\n'), true);
  await errored(); // the stream opened for 'd' (its error comes after this turn)
  assert.equal(streams.length, 2);
  assert.equal(out.write('e\n'), false);
  full = false;
  clock = 10_000;
  assert.equal(out.write('f\n'), true);
  await out.end();
  assert.deepEqual(written, ['a\n', 'f\n']);
  assert.equal(errors(), 1, logger.lines.join('\n'));
  assert.deepEqual(logger.lines.filter((l) => l.includes('is written again')).map((l) => /(\d+) lines? (was|were) dropped/.exec(l)?.[1]), ['2']);
});
