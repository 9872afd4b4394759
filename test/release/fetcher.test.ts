import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tar from 'tar';
import { HitlessError } from '../../src/errors.js';
import { createLogger } from '../../src/core/logger.js';
import type { FetchConfig } from '../../src/config/types.js';
import { deployRelease, goLive } from '../../src/release/deploy.js';
import { createFetcher, startFetcher } from '../../src/release/fetcher.js';
import { readCurrent } from '../../src/release/layout.js';
import { readState } from '../../src/release/state.js';
import { ArtifactServer } from './artifact-server.js';
import { FakeMaster } from './fake-master.js';
import { craftTgz, outcome, tempDir, writeTree, type TestContext } from './helpers.js';

const noMaster = async (): Promise<never> => { throw new HitlessError('ERR_NO_MASTER', 'no master'); };

async function tgzOf(dir: string, files: Record<string, string>): Promise<Buffer> {
  await writeTree(dir, files);
  const file = `${dir}.tgz`;
  await tar.c({ gzip: true, file, cwd: dir, portable: true }, ['.']);
  return readFile(file);
}

/** An app folder on release v1, a server, a fake master and a log. */
async function setup(t: TestContext) {
  const app = await tempDir(t);
  const work = await tempDir(t);
  await deployRelease(await writeTree(join(work, 'v1'), { 'app.js': 'v1' }), { appDir: app, id: 'v1', reload: noMaster });
  const server = await new ArtifactServer().start();
  t.after(() => server.close());
  server.artifact = await tgzOf(join(work, 'v2'), { 'app.js': 'v2' });
  const lines: string[] = [];
  const logger = createLogger({ format: 'text', write: (l) => lines.push(l) });
  const master = new FakeMaster();
  const fetchConfig = (over: Partial<FetchConfig> = {}): FetchConfig => ({
    url: `${server.base}/app.tgz`, interval: 50, sha256: undefined, sha256Url: undefined, headers: {},
    maxBytes: 1_000_000, timeout: 5_000, ...over,
  });
  const fetcher = (over: Partial<FetchConfig> = {}, now?: () => number) => {
    const f = createFetcher({ appDir: app, release: { keep: 5, prepare: undefined }, fetch: fetchConfig(over) }, master, logger, now);
    t.after(() => f.close());
    return f;
  };
  return { app, work, server, lines, logger, master, fetcher, fetchConfig };
}

test('fetch: a new artifact is installed and reloaded once; an unchanged one is a 304 and no reload', async (t) => {
  const { app, work, server, master, fetcher } = await setup(t);
  const f = fetcher({ headers: { authorization: 'Bearer token-1' } });
  const first = await f.pollOnce();
  assert.equal(first.status, 'live');
  assert.deepEqual(master.reasons, ['fetch']);
  assert.equal(await readFile(join(app, 'current', 'app.js'), 'utf8'), 'v2');
  assert.equal(server.headersSeen[0]?.authorization, 'Bearer token-1');
  assert.deepEqual(await f.pollOnce(), { status: 'not-modified' });
  assert.equal(server.requests.at(-1)?.status, 304);
  server.artifact = await tgzOf(join(work, 'v3'), { 'app.js': 'v3' });
  assert.equal((await f.pollOnce()).status, 'live');
  assert.equal(await readFile(join(app, 'current', 'app.js'), 'utf8'), 'v3');
  assert.deepEqual(master.reasons, ['fetch', 'fetch']);
  // The validators survive a restart of the master (a new fetcher): still a 304.
  assert.deepEqual(await fetcher().pollOnce(), { status: 'not-modified' });
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => n.startsWith('.hitless-fetch')), []);
});

test('fetch: an artifact that fails to go live is switched back and not retried until it changes; the log line says so and how to retry, and that retry works', async (t) => {
  const { app, work, server, master, fetcher, lines } = await setup(t);
  master.answer = async () => outcome(false);
  // A clock a minute on at each call: the retry below gets a release id of its own, as it
  // would minutes later (ids are to the second; the failed release is kept).
  let clock = Date.now();
  const f = fetcher({}, () => (clock += 60_000));
  const r = await f.pollOnce();
  assert.equal(r.status, 'rolled-back');
  assert.equal(await readCurrent(app), 'v1');
  const stateFile = join(app, 'releases', '.hitless-state.json');
  // The line says, once, that these bytes are not tried again and how to retry them.
  assert.ok(lines.some((l) => /ERR_RELEASE_ROLLED_BACK/.test(l) && /exited with code 1/.test(l) &&
    l.includes(`these bytes (sha256 ${server.sha256}) will not be retried until the artifact changes; to retry them, release them by hand (hitless release <file>), ` +
      `or remove ${server.sha256} from "failedArtifacts" and the "fetch" entry in ${stateFile}`)), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('| Error: boom')));
  assert.deepEqual((await readState(app)).failedArtifacts, [server.sha256]);
  server.ignoreConditional = true; // even when downloaded again, it is not retried
  assert.equal((await f.pollOnce()).status, 'unchanged');
  await writeFile(stateFile, JSON.stringify({ ...(await readState(app)), fetch: undefined }));
  assert.equal((await f.pollOnce()).status, 'known-bad');
  assert.equal(master.reasons.length, 1);
  // The retry the line describes works: the same bytes go to the master again.
  await writeFile(stateFile, JSON.stringify({ ...(await readState(app)), fetch: undefined, failedArtifacts: [] }));
  const retried = await f.pollOnce();
  assert.equal(retried.status, 'rolled-back', JSON.stringify(retried));
  assert.equal(master.reasons.length, 2);
  master.answer = async () => outcome(true);
  server.artifact = await tgzOf(join(work, 'v3'), { 'app.js': 'v3' });
  assert.equal((await f.pollOnce()).status, 'live');
  assert.equal(master.reasons.length, 3);
});

test('fetch: a Last-Modified within a second of the response (an upload still being written) is not kept: a complete file in the same second is fetched, not a 304 for the partial one', async (t) => {
  const { app, work, server, master, fetcher } = await setup(t);
  const complete = server.artifact;
  // A static server's Last-Modified has one-second resolution: the partial file and the
  // complete one written in the same second carry the same one.
  server.lastModified = new Date();
  server.artifact = complete.subarray(0, 20);
  const f = fetcher();
  assert.equal((await f.pollOnce()).status, 'error', 'the partial upload is unreadable');
  server.artifact = complete;
  assert.equal((await f.pollOnce()).status, 'live', 'the complete file is downloaded (no If-Modified-Since with a weak date)');
  assert.equal(server.requests.at(-1)?.status, 200);
  assert.equal(await readFile(join(app, 'current', 'app.js'), 'utf8'), 'v2');
  // A Last-Modified well before the response is kept: the next poll is a 304.
  server.lastModified = new Date(Date.now() - 60_000);
  server.artifact = await tgzOf(join(work, 'v3'), { 'app.js': 'v3' });
  assert.equal((await f.pollOnce()).status, 'live');
  assert.deepEqual(await f.pollOnce(), { status: 'not-modified' });
  assert.deepEqual(master.reasons, ['fetch', 'fetch']);
});

test('fetch: a release whose rollback failed too still serves from its folder: it is kept (failed), never removed as if nothing ran it (regression, h12 N6)', async (t) => {
  const { app, master, fetcher } = await setup(t);
  // The new release went live, a worker died, the rollback to v1 failed: generation 2 (v2) serves.
  master.answer = async () => outcome(false, {
    generation: 2, attempted: 2,
    error: { code: 'ERR_WORKER_EXITED', message: 'worker 2.0 (pid 4242) exited with code 5 1.2 s after the new generation went live', output: [] },
    rollback: { generation: 3, version: 1, ok: false, error: { code: 'ERR_WORKER_EXITED', message: 'worker 3.0 exited with code 9 before it was ready', output: [] } },
  });
  const r = await fetcher().pollOnce();
  assert.equal(r.status, 'rolled-back');
  const kept = Object.keys((await readState(app)).releases).sort();
  assert.equal(kept.length, 2, `the release that serves is kept: ${kept.join(', ')}`);
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')).sort(), kept);
});

test('fetch: a reload refused before anything started (a master upgrade under way) leaves the artifact unjudged: not remembered as failed, asked again at the next poll', async (t) => {
  const { app, server, master, fetcher, lines } = await setup(t);
  master.answer = async () => outcome(false, { attempted: 1, error: { code: 'ERR_UPGRADE_BUSY', message: 'a master upgrade is under way (new master pid 4242)', output: [] } });
  const f = fetcher();
  const r = await f.pollOnce();
  assert.deepEqual(r, { status: 'error', code: 'ERR_UPGRADE_BUSY', message: 'a master upgrade is under way (new master pid 4242)' });
  assert.equal(await readCurrent(app), 'v1');
  assert.deepEqual((await readState(app)).failedArtifacts, []);
  assert.deepEqual(Object.keys((await readState(app)).releases), ['v1'], 'the release nothing ran is removed, not kept as failed');
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')), ['v1']);
  assert.ok(lines.some((l) => /not judged: asked again at the next poll/.test(l)), lines.join('\n'));
  master.answer = async () => outcome(true);
  const again = await f.pollOnce();
  assert.equal(again.status, 'live', JSON.stringify(again));
  assert.equal(server.requests.at(-1)?.status, 200);
  assert.equal(master.reasons.length, 2);
});

test('fetch: the state file keeps no query string in clear (a presigned URL\'s signature), and the validators still serve the same URL', async (t) => {
  const { app, server, fetcher } = await setup(t);
  const g = fetcher({ url: `${server.base}/app.tgz?X-Amz-Signature=SECRET123` });
  assert.equal((await g.pollOnce()).status, 'live');
  const text = await readFile(join(app, 'releases', '.hitless-state.json'), 'utf8');
  assert.doesNotMatch(text, /SECRET123/);
  assert.match(text, /app\.tgz\?…#[0-9a-f]{16}/);
  assert.deepEqual(await g.pollOnce(), { status: 'not-modified' });
});

test('fetch: sha256 given literally or by sha256Url (sha256sum format) is checked; a mismatch is ERR_FETCH_CHECKSUM', async (t) => {
  const { app, server, master, fetcher, lines } = await setup(t);
  const bad = await fetcher({ sha256: 'f'.repeat(64) }).pollOnce();
  assert.equal(bad.status === 'error' && bad.code, 'ERR_FETCH_CHECKSUM');
  assert.equal(await readCurrent(app), 'v1');
  assert.ok(lines.some((l) => l.includes('ERR_FETCH_CHECKSUM') && l.includes('current release untouched')));
  assert.equal(master.reasons.length, 0);
  const good = await fetcher({ sha256Url: `${server.base}/app.tgz.sha256` }).pollOnce();
  assert.equal(good.status, 'live');
});

const failures: Array<[string, string, Partial<FetchConfig>, RegExp]> = [
  ['404', '/404', {}, /HTTP 404/],
  ['500', '/500', {}, /HTTP 500/],
  ['connection refused', '', { url: 'http://127.0.0.1:1/app.tgz' }, /request failed/],
  ['truncated download (Content-Length)', '/truncated', {}, /ended after \d+ of \d+ bytes/],
  ['truncated chunked download', '/truncated-chunked', {}, /ended after \d+ bytes/],
  ['server that never answers', '/hang', { timeout: 300 }, /no response for 300 ms/],
  ['server that stalls mid-body', '/stalls', { timeout: 300 }, /no data for 300 ms/],
  ['declared too large', '/big', {}, /larger than maxBytes/],
  ['streamed too large', '/big-chunked', {}, /larger than maxBytes/],
];
const codeOf: Record<string, string> = {
  '404': 'ERR_FETCH_HTTP', '500': 'ERR_FETCH_HTTP', 'connection refused': 'ERR_FETCH_HTTP',
  'truncated download (Content-Length)': 'ERR_FETCH_TRUNCATED', 'truncated chunked download': 'ERR_FETCH_TRUNCATED',
  'server that never answers': 'ERR_FETCH_TIMEOUT', 'server that stalls mid-body': 'ERR_FETCH_TIMEOUT',
  'declared too large': 'ERR_FETCH_TOO_LARGE', 'streamed too large': 'ERR_FETCH_TOO_LARGE',
};
for (const [name, path, over, why] of failures) {
  test(`fetch failure leaves current untouched with a clear error: ${name}`, async (t) => {
    const { app, server, master, fetcher, lines } = await setup(t);
    const r = await fetcher({ url: `${server.base}${path}`, ...over }).pollOnce();
    assert.equal(r.status, 'error');
    assert.equal(r.status === 'error' && r.code, codeOf[name]);
    assert.match(r.status === 'error' ? r.message : '', why);
    assert.equal(await readCurrent(app), 'v1');
    assert.equal(master.reasons.length, 0);
    assert.ok(lines.some((l) => l.includes(codeOf[name]!)), lines.join(''));
    assert.deepEqual((await readdir(join(app, 'releases'))).sort(), ['.hitless-state.json', 'v1']);
  });
}

test('fetch: an error that repeats at every poll (a 404 before the first publish) is logged once, not at every poll; a new one, or the same after a good poll, is logged again', async (t) => {
  const { server, fetcher, lines } = await setup(t);
  const missing = fetcher({ url: `${server.base}/404` });
  for (let i = 0; i < 3; i++) assert.equal((await missing.pollOnce()).status, 'error');
  const said = (): number => lines.filter((l) => l.includes('HTTP 404')).length;
  assert.equal(said(), 1, lines.join(''));
  assert.match(lines.find((l) => l.includes('HTTP 404')) ?? '', /the same error again is logged every 10 min/);
  const good = fetcher();
  assert.equal((await good.pollOnce()).status, 'live');
  server.mode = '500';
  server.ignoreConditional = true;
  assert.equal((await good.pollOnce()).status, 'error');
  assert.equal((await good.pollOnce()).status, 'error');
  assert.equal(lines.filter((l) => l.includes('HTTP 500')).length, 1, 'another fetcher, a new error: said once');
});

test('fetch: a poll that fetched nothing (a 404 before the first publish) leaves no empty releases/ in an app folder that had none (h16 housekeeping)', async (t) => {
  const app = await tempDir(t);
  const server = await new ArtifactServer().start();
  t.after(() => server.close());
  const logger = createLogger({ format: 'text', write: () => {} });
  const f = createFetcher({ appDir: app, release: { keep: 5, prepare: undefined }, fetch: {
    url: `${server.base}/404`, interval: 50, sha256: undefined, sha256Url: undefined, headers: {}, maxBytes: 1_000_000, timeout: 5_000,
  } }, new FakeMaster(), logger);
  t.after(() => f.close());
  assert.equal((await f.pollOnce()).status, 'error');
  assert.deepEqual(await readdir(app), []);
});

test('fetch: a malicious artifact is refused (ERR_RELEASE_UNSAFE_ARCHIVE) and remembered, the log line saying it is not retried', async (t) => {
  const { app, server, master, fetcher, lines } = await setup(t);
  server.artifact = craftTgz([{ path: '../../escape.txt', type: 'File', body: 'x' }]);
  const r = await fetcher().pollOnce();
  assert.equal(r.status === 'error' && r.code, 'ERR_RELEASE_UNSAFE_ARCHIVE');
  assert.ok(lines.some((l) => /ERR_RELEASE_UNSAFE_ARCHIVE/.test(l) && l.includes('current release untouched; these bytes') && l.includes('will not be retried')), lines.join('\n'));
  assert.equal(await readCurrent(app), 'v1');
  assert.equal(master.reasons.length, 0);
  assert.deepEqual((await readState(app)).failedArtifacts, [server.sha256]);
});

test('fetch: an artifact tar cannot read (a truncated upload, its checksum matching) is ERR_RELEASE_SOURCE naming the URL, and remembered', async (t) => {
  const { app, server, master, fetcher, lines } = await setup(t);
  server.artifact = server.artifact.subarray(0, server.artifact.length - 8);
  const r = await fetcher({ sha256: server.sha256 }).pollOnce();
  assert.equal(r.status === 'error' && r.code, 'ERR_RELEASE_SOURCE');
  assert.ok(lines.some((l) => l.includes(`${server.base}/app.tgz is not a readable .tgz/.tar archive`) && l.includes('truncated')), lines.join(''));
  assert.equal(await readCurrent(app), 'v1');
  assert.equal(master.reasons.length, 0);
  assert.deepEqual((await readState(app)).failedArtifacts, [server.sha256]);
  server.ignoreConditional = true;
  assert.equal((await fetcher({ sha256: server.sha256 }).pollOnce()).status, 'unchanged', 'not downloaded into a release again');
});

test('fetch: after a manual rollback, a new URL for the same artifact (a rotated presigned URL) does not reinstall it', async (t) => {
  const { app, server, master, fetcher } = await setup(t);
  assert.equal((await fetcher().pollOnce()).status, 'live');
  await goLive('v1', { appDir: app, reason: 'rollback to v1', reload: async () => outcome(true) });
  assert.equal(await readCurrent(app), 'v1');
  const rotated = await fetcher({ url: `${server.base}/app.tgz?X-Amz-Signature=BBB` }).pollOnce();
  assert.equal(rotated.status, 'unchanged');
  assert.equal(await readCurrent(app), 'v1');
  assert.deepEqual(master.reasons, ['fetch']);
});

test('fetch: redirects are followed (GitHub asset URLs answer 302)', async (t) => {
  const { server, fetcher } = await setup(t);
  assert.equal((await fetcher({ url: `${server.base}/redirect` }).pollOnce()).status, 'live');
});

test('regression: Authorization is not forwarded on a cross-origin redirect (GitHub asset -> storage host)', async (t) => {
  const { server, fetcher } = await setup(t);
  const storage = await new ArtifactServer().start();
  t.after(() => storage.close());
  storage.artifact = server.artifact;
  server.redirectTo = `${storage.base}/app.tgz`;
  const r = await fetcher({ url: `${server.base}/cross`, headers: { authorization: 'Bearer secret', accept: 'application/octet-stream' } }).pollOnce();
  assert.equal(r.status, 'live');
  assert.equal(server.headersSeen[0]?.authorization, 'Bearer secret');
  assert.equal(storage.headersSeen[0]?.authorization, undefined);
  assert.equal(storage.headersSeen[0]?.accept, 'application/octet-stream');
});

test('fetch: file:// artifacts install and are not re-read while unchanged', async (t) => {
  const { app, work, server, master, fetcher } = await setup(t);
  const drop = join(work, 'drop');
  await mkdir(drop);
  await writeFile(join(drop, 'app.tgz'), server.artifact);
  const f = fetcher({ url: pathToFileURL(join(drop, 'app.tgz')).href });
  assert.equal((await f.pollOnce()).status, 'live');
  assert.deepEqual(await f.pollOnce(), { status: 'not-modified' });
  assert.equal(await readFile(join(app, 'current', 'app.js'), 'utf8'), 'v2');
  assert.equal(master.reasons.length, 1);
});

test('fetch loop: exactly one reload per artifact change across many polls', async (t) => {
  const { app, work, server, master, logger, fetchConfig } = await setup(t);
  const f = startFetcher({ appDir: app, release: { keep: 5, prepare: undefined }, fetch: fetchConfig() } as never, master, logger);
  t.after(() => f.close());
  await master.reloads(1);
  await server.served(server.requests.length + 3); // three more polls, all 304
  assert.equal(master.reasons.length, 1);
  server.artifact = await tgzOf(join(work, 'v3'), { 'app.js': 'v3' });
  await master.reloads(2);
  await server.served(server.requests.length + 3);
  assert.equal(master.reasons.length, 2);
  assert.ok(server.requests.slice(-3).every((r) => r.status === 304));
  await f.close();
  assert.equal(await readFile(join(app, 'current', 'app.js'), 'utf8'), 'v3');
});
