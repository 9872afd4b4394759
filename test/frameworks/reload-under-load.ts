/**
 * The check every framework test makes: reload the master N times under keep-alive load,
 * then assert zero failed requests, that every generation (1 … N+1) answered, and that the
 * load's connections were handed over from generation to generation (never re-opened).
 *
 * The load generator (the project's own client) sits behind startKeepAliveLoad() alone.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { MasterProcess } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';

export interface LoadOutcome {
  requests: number;
  failed: number;
  /** Distinct X-Generation values seen, ascending. */
  generations: string[];
  /** Connections the load opened (its 20, when no reload closed any). */
  opened: number;
  /** The load generator's own report, for assertion messages. */
  raw: string;
}

/** Connections the load keeps open. */
export const LOAD_CONNECTIONS = 20;

/** Keep-alive load on `url` (loopback only), bounded at `maxSeconds`; stop() ends it early. */
export function startKeepAliveLoad(url: string, maxSeconds = 240): { stop(): Promise<LoadOutcome> } {
  const run = startLoad(undefined, { url, connections: LOAD_CONNECTIONS, durationMs: maxSeconds * 1000 });
  return {
    async stop() {
      const r = await run.stop();
      return { requests: r.requests, failed: r.failed, generations: r.generations, opened: r.opened, raw: r.raw };
    },
  };
}

/** Reloads `master` `reloads` times under load on `path` and checks the outcome. */
export async function reloadUnderLoad(t: TestContext, master: MasterProcess, path: string, reloads: number): Promise<LoadOutcome> {
  const load = startKeepAliveLoad(master.url(path));
  t.after(() => load.stop());
  for (let i = 0; i < reloads; i++) {
    const r = await master.reload();
    assert.equal(r.code, 0, `reload ${i + 1} failed:\n${r.stdout}\n${r.stderr}`);
  }
  // The newest generation answers while the load still runs (the load generator may stop
  // before its own first answer from it arrives).
  const latest = await fetch(master.url(path));
  await latest.text();
  assert.equal(latest.headers.get('x-generation'), String(reloads + 1), 'the newest generation answers');
  const result = await load.stop();
  assert.ok(result.requests > 0, result.raw);
  assert.equal(result.failed, 0, `failed requests across ${reloads} reloads:\n${result.raw}`);
  const seen = [...new Set([...result.generations, String(reloads + 1)])].sort((a, b) => Number(a) - Number(b));
  const all = Array.from({ length: reloads + 1 }, (_, i) => String(i + 1));
  assert.deepEqual(seen, all, `every generation must have served:\n${result.raw}`);
  const forced = master.events('reload-drained').filter((e) => e.forced !== 0);
  assert.deepEqual(forced, [], 'no old worker was killed at the drain deadline');
  const handed = master.events('reload-drained').reduce((n, e) => n + Number(e.handedOver ?? 0), 0);
  t.diagnostic(`${result.raw}; connections handed over across ${reloads} reloads: ${handed}`);
  assert.equal(result.opened, LOAD_CONNECTIONS, `the load re-opened connections (hand-over):\n${result.raw}`);
  assert.ok(handed >= LOAD_CONNECTIONS, `only ${handed} connections were handed over`);
  return result;
}
