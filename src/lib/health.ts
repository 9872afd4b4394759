/**
 * Health endpoints for load balancers and Kubernetes probes.
 */
import type * as http from 'node:http';

let shuttingDown = false;

/** Records that a graceful shutdown began in this process (internal). */
export function markShuttingDown(): void {
  shuttingDown = true;
}

/**
 * True once a graceful shutdown began in this process: a stop signal arrived (also during
 * `shutdownDelay`), the master's lifeline closed, or `shutdown()` was called.
 *
 * @example
 * if (isShuttingDown()) res.setHeader('Connection', 'close');
 */
export function isShuttingDown(): boolean {
  return shuttingDown;
}

/** Request listeners for health probes. */
export interface HealthHandlers {
  /** 200 "ready" until shutdown begins, 503 "shutting down" after (fail readiness first). */
  readiness: http.RequestListener;
  /** Always 200 "ok": the process is alive and answering. */
  liveness: http.RequestListener;
}

function answer(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

/**
 * Readiness and liveness handlers. Readiness fails (503) from the moment shutdown begins,
 * including the `shutdownDelay` window, so a balancer stops routing before the drain.
 *
 * @example
 * const health = healthHandlers();
 * serve((req, res) => {
 *   if (req.url === '/readyz') return health.readiness(req, res);
 *   if (req.url === '/livez') return health.liveness(req, res);
 *   res.end('hello');
 * });
 */
export function healthHandlers(): HealthHandlers {
  return {
    readiness: (_req, res) => (shuttingDown ? answer(res, 503, 'shutting down\n') : answer(res, 200, 'ready\n')),
    liveness: (_req, res) => answer(res, 200, 'ok\n'),
  };
}
