/**
 * Load through the balancer during a fleet test, behind one function: the project's own
 * load client (test/helpers/load.ts), keep-alive, 8 connections. Bounded: at most
 * `maxSeconds`, stopped by the test as soon as its deploy is done.
 */
import { startLoad } from '../helpers/load.js';

export interface FleetLoad {
  stop(): Promise<{ requests: number; failed: number; detail: string }>;
}

/** Keep-alive load on `url` (127.0.0.1 only) until stop(). */
export function startFleetLoad(url: string, maxSeconds = 60): FleetLoad {
  const run = startLoad(undefined, { url, connections: 8, durationMs: maxSeconds * 1000 });
  return {
    async stop() {
      const r = await run.stop();
      return { requests: r.requests, failed: r.failed, detail: r.raw };
    },
  };
}
