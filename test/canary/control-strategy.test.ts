/**
 * The control protocol's reload option `strategy` (what `hitless reload --canary` sends):
 * passed to the master for this reload only; an unknown name is refused before any reload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer } from '../../src/control/server.js';
import { controlRequest } from '../../src/control/client.js';
import { isHitlessError } from '../../src/errors.js';
import { EventEmitter } from 'node:events';
import type { MasterHandle, ReloadOptions, ReloadOutcome, StatusSnapshot } from '../../src/core/types.js';
import { FakeMaster, memoryLogger } from '../ops/fake-master.js';

/** A master that records what reload() was asked. */
class RecordingMaster extends EventEmitter implements MasterHandle {
  readonly asked: { reason: string; options: ReloadOptions | undefined }[] = [];
  readonly #fake = new FakeMaster();
  status(): StatusSnapshot {
    return this.#fake.status();
  }
  reload(reason: string, options?: ReloadOptions): Promise<ReloadOutcome> {
    this.asked.push({ reason, options });
    return Promise.resolve({ ok: true, generation: 2, attempted: 2, reason, startedAt: 0, durationMs: 1, forced: 0 });
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

test('control reload: args.strategy reaches the master for this reload; an unknown one is refused with ERR_CONTROL_PROTOCOL', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'hitless-control-canary-'));
  const master = new RecordingMaster();
  const server = await startControlServer({ runDir: join(runDir, 'run'), handle: master, logger: memoryLogger() });
  t.after(async () => {
    await server.close();
    rmSync(runDir, { recursive: true, force: true });
  });
  const dir = join(runDir, 'run');
  await controlRequest(dir, 'reload', { reason: 'hitless reload --canary', strategy: 'canary' });
  await controlRequest(dir, 'reload', { reason: 'plain' });
  // `follow` is the server's own listener for the request's events (not from the client).
  assert.deepEqual(master.asked.map(({ reason, options }) => ({ reason, strategy: options?.strategy })), [
    { reason: 'hitless reload --canary', strategy: 'canary' },
    { reason: 'plain', strategy: undefined },
  ]);
  await assert.rejects(controlRequest(dir, 'reload', { strategy: 'blue-green' }),
    (e) => isHitlessError(e, 'ERR_CONTROL_PROTOCOL') && /unknown strategy "blue-green"; known: all, rolling, canary/.test(e.message));
  assert.equal(master.asked.length, 2);
});
