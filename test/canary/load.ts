/**
 * Load for the canary tests, behind one function so the load client can change: new
 * connections all the time (`Connection: close`), because the kernel hands a canary its
 * share of *new* connections, and keep-alive connections stay where they are. The project's
 * load client counts a request lost on a reset connection (it never re-sends), so "no
 * connection errors" means what it says. Runs until stop() or the test's end (bounded against
 * a hang only: on a busy machine a canary reload may take many times its idle length); 127.0.0.1 only.
 */
import type { TestContext } from 'node:test';
import { startLoad as startClient } from '../helpers/load.js';

export interface LoadCount {
  requests: number;
  /** Responses with a status outside 2xx/3xx (here: the canary's 500s). */
  non2xx: number;
  /** Connect, read, write and timeout errors: requests that got no response. */
  connectionErrors: number;
  /** X-Generation values seen. */
  generations: string[];
  raw: string;
}

export function startLoad(t: TestContext, url: string): { stop(): Promise<LoadCount> } {
  const run = startClient(t, { url, connections: 16, close: true });
  return {
    async stop() {
      const r = await run.stop();
      const e = r.errors;
      return { requests: r.requests, non2xx: r.non2xx, connectionErrors: e.connect + e.read + e.write + e.timeout, generations: r.generations, raw: r.raw };
    },
  };
}
