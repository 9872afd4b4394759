/**
 * A small keep-alive load loop for what wrk cannot reach (unix sockets). Node's http
 * client never re-sends a request, so every lost request surfaces as an error here.
 * Bounded in count and time; targets a local unix socket or 127.0.0.1 only.
 */
import http from 'node:http';

export interface LoadResult {
  requests: number;
  failed: number;
  errors: string[];
  generations: string[];
}

export interface LoadRun {
  stop(): Promise<LoadResult>;
}

export function startLoad(options: { socketPath: string; connections?: number; maxRequests?: number; maxMs?: number }): LoadRun {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections ?? 20 });
  const maxRequests = options.maxRequests ?? 200_000;
  const deadline = Date.now() + (options.maxMs ?? 120_000);
  let stopped = false;
  const result: LoadResult = { requests: 0, failed: 0, errors: [], generations: [] };
  const seen = new Set<string>();
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ socketPath: options.socketPath, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          result.requests += 1;
          const g = String(res.headers['x-generation']);
          if (!seen.has(g)) seen.add(g);
          if (res.statusCode !== 200) {
            result.failed += 1;
            result.errors.push(`status ${String(res.statusCode)}`);
          }
          resolve();
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        result.requests += 1;
        result.failed += 1;
        if (result.errors.length < 20) result.errors.push(err.code ?? err.message);
        resolve();
      });
    });
  const loops = Array.from({ length: options.connections ?? 20 }, async () => {
    while (!stopped && result.requests < maxRequests && Date.now() < deadline) await one();
  });
  const all = Promise.all(loops);
  return {
    async stop() {
      stopped = true;
      await all;
      agent.destroy();
      result.generations = [...seen].sort((a, b) => Number(a) - Number(b));
      return result;
    },
  };
}
