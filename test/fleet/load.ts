/**
 * Load through the balancer during a fleet test, behind one function so the load client
 * can be swapped (wrk today) without touching the tests. Bounded: at most `maxSeconds`,
 * stopped by the test as soon as its deploy is done.
 */
import { startWrk } from '../helpers/wrk.js';

export interface FleetLoad {
  stop(): Promise<{ requests: number; failed: number; detail: string }>;
}

/** Keep-alive load on `url` (127.0.0.1 only) until stop(); one thread, so the hosts keep a core. */
export function startFleetLoad(url: string, maxSeconds = 60): FleetLoad {
  const run = startWrk({ url, connections: 8, threads: 1, duration: maxSeconds });
  return {
    async stop() {
      const r = await run.stop();
      return { requests: r.requests, failed: r.failed, detail: r.raw };
    },
  };
}
