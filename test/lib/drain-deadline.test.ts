/**
 * The drain deadline a worker takes when its app gives none: the master's `drainTimeout`
 * (env HITLESS_DRAIN_TIMEOUT) less one hook's time, shortened by a `shutdownDelay` waited
 * first; 10 s standalone. Regression (h15 F1): the library cut long responses at its own
 * 10 s whatever `drainTimeout` the operator had raised.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { DRAIN_TIMEOUT_ENV, drainDeadline } from '../../src/lib/defaults.js';
import { drainTimeoutAfter, resolveShutdownOptions } from '../../src/lib/options.js';
import { workerEnv } from '../../src/core/spec.js';
import { fakeSpec } from '../core/fake-host.js';

function withEnv(t: TestContext, value: string | undefined): void {
  const saved = process.env[DRAIN_TIMEOUT_ENV];
  t.after(() => {
    if (saved === undefined) delete process.env[DRAIN_TIMEOUT_ENV];
    else process.env[DRAIN_TIMEOUT_ENV] = saved;
  });
  if (value === undefined) delete process.env[DRAIN_TIMEOUT_ENV];
  else process.env[DRAIN_TIMEOUT_ENV] = value;
}

test('drainDeadline: drainTimeout less 5 s, at least half of it', () => {
  assert.equal(drainDeadline(30_000), 25_000);
  assert.equal(drainDeadline(60_000), 55_000);
  assert.equal(drainDeadline(8_000), 4_000);
  assert.equal(drainDeadline(0), 0);
});

test('standalone (no HITLESS_DRAIN_TIMEOUT, or not a positive number) the deadline is 10 s', (t) => {
  for (const value of [undefined, '', 'abc', '-5', '0']) {
    withEnv(t, value);
    const o = resolveShutdownOptions('serve()', undefined);
    assert.equal(o.timeout, 10_000, String(value));
    assert.equal(o.masterDrainTimeout, undefined);
    assert.equal(drainTimeoutAfter(o, 3_000), 10_000, 'a standalone deadline does not follow a delay');
  }
});

test('under the master the default follows its drainTimeout; a timeout the app gives wins', (t) => {
  withEnv(t, '120000');
  assert.equal(resolveShutdownOptions('serve()', undefined).timeout, 115_000);
  assert.equal(resolveShutdownOptions('preload', undefined, false).timeout, 115_000);
  const given = resolveShutdownOptions('serve()', { timeout: 3_000 });
  assert.equal(given.timeout, 3_000);
  assert.equal(drainTimeoutAfter(given, 10_000), 3_000, 'a given timeout is not shortened by the delay');
});

test('a drain after shutdownDelay takes what is left of drainTimeout, which counts from the stop signal', (t) => {
  withEnv(t, '35000');
  const o = resolveShutdownOptions('serve()', undefined);
  assert.equal(o.timeout, 30_000);
  assert.equal(drainTimeoutAfter(o, 0), 30_000);
  assert.equal(drainTimeoutAfter(o, 10_000), 20_000); // docs/kubernetes.md's budget: 10 s + 20 s < 35 s
  assert.equal(drainTimeoutAfter(o, 40_000), 0, 'a delay past drainTimeout leaves nothing: the master SIGKILLs anyway');
});

test('the master gives every worker its drainTimeout', () => {
  const env = workerEnv(fakeSpec({ drainTimeout: 45_000 }), 3, 0, 4242);
  assert.equal(env[DRAIN_TIMEOUT_ENV], '45000');
});
