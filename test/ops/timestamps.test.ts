// Worker log lines with timestamps when asked for ("logs": { "timestamps": true }), in both
// logs modes (issue 19).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatLine } from '../../src/ops/logfiles.js';
import { fixture, startMaster } from '../helpers/master.js';

const STAMP = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';

test('formatLine: the time first (ISO 8601, UTC), then the tag; without timestamps unchanged', () => {
  const e = { generation: 3, slot: 1, stream: 'stderr' as const, line: 'boom' };
  assert.equal(formatLine(e, true), '[3.1 stderr] boom\n');
  assert.equal(formatLine(e, false), 'boom\n');
  assert.equal(formatLine(e, true, Date.UTC(2026, 0, 2, 3, 4, 5, 6)), '2026-01-02T03:04:05.006Z [3.1 stderr] boom\n');
  assert.equal(formatLine(e, false, Date.UTC(2026, 0, 2)), '2026-01-02T00:00:00.000Z boom\n');
  assert.equal(formatLine(e, true, Date.UTC(2026, 0, 2), false), '2026-01-02T00:00:00.000Z [3.1] boom\n', 'on the master\'s own stderr the stream needs no tag');
});

for (const mode of ['inherit', 'file'] as const) {
  test(`logs.timestamps in ${mode} mode: every worker line starts with the time the master read it`, { timeout: 60_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hitless-stamps-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ logs: { mode, dir: join(dir, 'logs'), tag: true, timestamps: true } }));
    const before = Date.now();
    const master = await startMaster(t, { command: [process.execPath, fixture('ops/app.js')], cwd: dir, env: { LINES: '4' } });
    assert.equal((await master.stop()).code, 0);
    const text = mode === 'file' ? readFileSync(join(dir, 'logs', 'workers.log'), 'utf8') : master.stdout;
    const lines = text.split('\n').filter((l) => /g=\d+ w=\d+/.test(l));
    assert.equal(lines.length, mode === 'file' ? 5 : 3, text); // inherit: the odd lines went to stderr
    for (const line of lines) {
      const m = new RegExp(`^(${STAMP}) \\[1\\.0( stderr)?\\] (?:done )?g=1 w=0`).exec(line);
      assert.ok(m, `no timestamp and tag on ${JSON.stringify(line)}`);
      const at = Date.parse(m[1]!);
      assert.ok(at >= before - 1000 && at <= Date.now(), `${m[1]} is not the time of this run`);
    }
    if (mode === 'inherit') assert.match(master.stderr, new RegExp(`^${STAMP} \\[1\\.0\\] g=1 w=0 n=1$`, 'm'));
  });
}
