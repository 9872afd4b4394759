/**
 * The canary settings in hitless.json: one default per setting, durations in ms, bad
 * values named by key with the fix, and a canary larger than the generation refused.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_CANARY } from '../../src/config/defaults.js';
import { isHitlessError } from '../../src/errors.js';

function load(t: TestContext, config: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-canary-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', 'app.js'], listen: ['127.0.0.1:0'], ...config }));
  return loadConfig({ cwd: dir, env: {} });
}

test('canary config: defaults when absent, durations parsed, strategy "canary" accepted', (t) => {
  assert.deepEqual(load(t, {}).canary, DEFAULT_CANARY);
  assert.equal(load(t, {}).canary.connections, 'auto');
  const c = load(t, { workers: 3, strategy: 'canary', canary: { workers: 2, duration: '1m', warmup: '10s', minRequests: 0, maxErrorRate: 0.05, maxLatencyRatio: 1.5, then: 'rolling', connections: 0.25 } });
  assert.equal(c.strategy, 'canary');
  assert.deepEqual(c.canary, { workers: 2, duration: 60_000, warmup: 10_000, minRequests: 0, maxErrorRate: 0.05, maxLatencyRatio: 1.5, then: 'rolling', connections: 0.25 });
  assert.equal(load(t, { canary: { connections: 40 } }).canary.connections, 40);
  assert.equal(load(t, { canary: { connections: 0 } }).canary.connections, 0);
});

test('canary config: bad values are named by key with what to write', (t) => {
  const bad = (canary: Record<string, unknown>, re: RegExp): void => {
    assert.throws(() => load(t, { workers: 2, canary }), (e) => isHitlessError(e, 'ERR_CONFIG_INVALID') && re.test(e.message), JSON.stringify(canary));
  };
  bad({ maxErrorRate: 5 }, /canary\.maxErrorRate.*a share from 0 to 1/);
  bad({ maxLatencyRatio: 0.5 }, /canary\.maxLatencyRatio.*a number >= 1/);
  bad({ then: 'canary' }, /canary\.then.*"all" or "rolling"/);
  bad({ duration: 'soon' }, /canary\.duration.*duration/);
  bad({ workers: 3 }, /canary\.workers.*more than workers \(2\).*lower canary\.workers or raise workers/);
  bad({ maxErors: 0.1 }, /maxErors/);
  // Issue 18: a share (0 to 1) or a count above 1; 1.5 is neither.
  for (const connections of [1.5, -1, 'half']) bad({ connections }, /canary\.connections.*"auto", a share from 0 to 1 like 0\.25 .* or a whole number of connections above 1 like 40/);
});
