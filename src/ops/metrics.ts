/**
 * Prometheus endpoint of the master (config `metrics: { listen }`, off by default).
 * prom-client is imported lazily so a master without metrics never loads it.
 *
 * Counters are the master's own totals (counters.ts), counted since the master started,
 * so metrics turned on or moved by a reload keep them; gauges read `master.status()` at
 * scrape time, so they can never drift from what `hitless status` shows.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HitlessError } from '../errors.js';
import type { Logger } from '../core/logger.js';
import { parseMetricsListen } from '../config/metrics.js';
import type { MasterConfig } from '../config/types.js';
import type { MasterHandle, ReleaseTraffic, WorkerState } from '../core/types.js';
import { LATENCY_BOUNDS_MS } from '../lib/stats.js';
import { masterHealth } from './health.js';

/** The master's health endpoint on the metrics listener: 200 while a generation serves, 503 while none does. */
export const HEALTH_PATH = '/healthz';
import { CANARY_OUTCOMES, CONNECTION_OUTCOMES, MasterCounters, RELOAD_DURATION_BUCKETS } from './counters.js';

export { RELOAD_DURATION_BUCKETS };

const WORKER_STATES: WorkerState[] = ['starting', 'ready', 'draining', 'exited', 'failed', 'restarting'];

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** `host:port` actually bound (port resolved when 0 was asked). */
  address: string;
  /** Stops serving and detaches from the master. */
  close(): Promise<void>;
}


/**
 * Starts the Prometheus endpoint at `config.metrics.listen` (GET /metrics). Exposes:
 * `hitless_reloads_total{result="ok|failed"}`, `hitless_reload_duration_seconds`,
 * `hitless_workers{state}`, `hitless_worker_restarts_total`,
 * `hitless_workers_forced_total`, `hitless_reload_requests_total{outcome="started|queued|merged|refused"}`, `hitless_generation`, `hitless_master_uptime_seconds`,
 * the workers' traffic per release (`hitless_http_requests_total{release,class}`,
 * `hitless_http_errors_total{release}`, `hitless_http_request_duration_seconds{release}`;
 * only the serving release and the most recent other one), and prom-client's default
 * process metrics of the master (less its gauges named `*_total`: dropMisnamedTotals). The counters come from `counters`, the master's own
 * totals since it started (without it: totals counted from now, for tests).
 *
 * @example
 * ```ts
 * if (config.metrics) {
 *   const metrics = await startMetrics(config, master, logger, counters);
 *   logger.info('metrics', { address: metrics.address });
 *   // on stop: await metrics.close();
 * }
 * ```
 */
export async function startMetrics(config: MasterConfig, master: MasterHandle, logger: Logger, counters?: MasterCounters): Promise<MetricsEndpoint> {
  if (!config.metrics) throw new HitlessError('ERR_CONFIG_INVALID', 'startMetrics called without config "metrics"');
  const { host, port } = parseMetricsListen(config.metrics.listen);
  const client = await import('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  dropMisnamedTotals(registry);
  const own = counters === undefined ? new MasterCounters(master) : undefined;
  const totals = counters ?? (own as MasterCounters);

  for (const metric of counterMetrics(totals)) registry.registerMetric(metric as unknown as import('prom-client').Metric);
  new client.Gauge({
    name: 'hitless_workers', help: 'Workers by state.', labelNames: ['state'] as const, registers: [registry],
    collect() {
      const counts = new Map<string, number>(WORKER_STATES.map((s) => [s, 0]));
      for (const w of master.status().workers) counts.set(w.state, (counts.get(w.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new client.Gauge({
    name: 'hitless_draining_generations', help: 'Old generations still draining (in the background, once no reload waits for them: docs/websockets.md).', registers: [registry],
    collect() { this.set(master.status().draining?.length ?? 0); },
  });
  new client.Gauge({
    name: 'hitless_draining_upgraded_connections', help: 'Upgraded (WebSocket) connections old generations still hold, as their workers last said.', registers: [registry],
    collect() { this.set((master.status().draining ?? []).reduce((n, d) => n + d.upgraded, 0)); },
  });
  new client.Gauge({
    name: 'hitless_generation', help: 'Generation now serving.', registers: [registry],
    collect() { this.set(master.status().generation); },
  });
  new client.Gauge({
    name: 'hitless_master_uptime_seconds', help: 'Seconds since the master started.', registers: [registry],
    collect() { this.set(master.status().uptimeMs / 1000); },
  });

  // Read from the supervisor's own counts at scrape time: they cover the master's whole life.
  registry.registerMetric(raw('hitless_reload_requests_total',
    'Reload requests (SIGHUP, hitless reload, watch, fetch, release) by what became of them: started at once, queued behind a reload or scale in progress, merged into a reload already queued, refused before anything ran (a configuration that does not validate, a master stopping or upgrading). None is dropped silently.',
    'counter', () => Object.entries({ started: 0, queued: 0, merged: 0, refused: 0, ...master.status().reloadRequests })
      .map(([outcome, value]) => ({ labels: { outcome }, value }))) as unknown as import('prom-client').Metric);
  for (const metric of trafficMetrics(() => master.status().traffic?.releases ?? [])) {
    registry.registerMetric(metric as unknown as import('prom-client').Metric);
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === HEALTH_PATH) {
      // The master's own health beside its metrics (ops/health.ts); never cached by a balancer.
      const health = masterHealth(master.status());
      res.writeHead(health.status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(req.method === 'HEAD' ? undefined : JSON.stringify(health.body) + '\n');
    } else if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: metrics are at /metrics, health at ${HEALTH_PATH}\n`);
    } else {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          logger.error('metrics scrape failed', { error: String(err) });
          res.writeHead(500).end();
        },
      );
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      registry.clear();
      own?.close();
      // The app's own address: the master holds that socket itself.
      const mine = config.listen.find((l) => l.kind === 'tcp' && l.port === port);
      reject(new HitlessError('ERR_BIND',
        `config "metrics.listen": cannot listen on ${config.metrics!.listen}: ${err.code ?? err.message}` +
        (mine && err.code === 'EADDRINUSE' ? ` (port ${port} is this master's own listen address ${mine.source}: give metrics another port)` : ''),
        { cause: err, details: { metrics: config.metrics!.listen, errno: err.code, own: mine !== undefined } }));
    });
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => logger.error('metrics server error', { error: String(err) }));
  const a = server.address() as AddressInfo;
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  logger.info('metrics serving', { address, path: '/metrics' });

  return {
    address,
    async close() {
      own?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      registry.clear();
    },
  };
}

/**
 * The master's counters as Prometheus counters and a histogram, read at scrape time.
 *
 * @example
 * for (const m of counterMetrics(counters)) registry.registerMetric(m as never);
 */
export function counterMetrics(c: MasterCounters): RawMetric[] {
  return [
    raw('hitless_reloads_total', 'Reloads by result (ok: the new generation went live).', 'counter', () =>
      [{ labels: { result: 'ok' }, value: c.reloads.ok }, { labels: { result: 'failed' }, value: c.reloads.failed }]),
    raw('hitless_reload_duration_seconds', 'Time from reload start to outcome, seconds.', 'histogram', (): RawValue[] => {
      let cumulative = 0;
      return [
        ...RELOAD_DURATION_BUCKETS.map((le, i) => {
          cumulative += c.durations.buckets[i] ?? 0;
          return { metricName: 'hitless_reload_duration_seconds_bucket', labels: { le }, value: cumulative };
        }),
        { metricName: 'hitless_reload_duration_seconds_bucket', labels: { le: '+Inf' }, value: c.durations.count },
        { metricName: 'hitless_reload_duration_seconds_sum', labels: {}, value: c.durations.sumSeconds },
        { metricName: 'hitless_reload_duration_seconds_count', labels: {}, value: c.durations.count },
      ];
    }),
    raw('hitless_worker_restarts_total', 'Crashed workers restarted by the master.', 'counter', () => [{ labels: {}, value: c.restarts }]),
    raw('hitless_workers_forced_total', 'Old workers SIGKILLed at drainTimeout during reloads.', 'counter', () => [{ labels: {}, value: c.forced }]),
    raw('hitless_reload_connections_total',
      'What became of retired workers\' connections at reloads and hitless scale downs: handed_over (to the new generation), returned (no new worker could take them; drained), lost (neither side alive), drained (closed gracefully by the old workers), cut (destroyed at an old worker\'s own shutdown deadline), websocket_handed_over (WebSockets moved to the new generation by hitless/ws).',
      'counter', () => CONNECTION_OUTCOMES.map((outcome) => ({ labels: { outcome }, value: c.connections[outcome] }))),
    raw('hitless_canary_connections_total',
      'Kept-alive connections the serving workers handed to canaries: moved (the canary held them), returned (no canary could take them), lost (a canary died holding them).',
      'counter', () => CANARY_OUTCOMES.map((outcome) => ({ labels: { outcome }, value: c.canaryConnections[outcome] }))),
    raw('hitless_scale_connections_total',
      'Kept-alive connections the serving workers handed to the workers a hitless scale up added: moved (a new worker held them), returned (no new worker could take them), lost (a new worker died holding them).',
      'counter', () => CANARY_OUTCOMES.map((outcome) => ({ labels: { outcome }, value: c.scaleConnections[outcome] }))),
  ];
}

type RawValue = { metricName?: string; labels: Record<string, string | number>; value: number };

/**
 * Removes the default metrics that are not counters yet end in `_total`: prom-client 15 registers
 * the gauges `nodejs_active_handles_total`, `nodejs_active_requests_total` and
 * `nodejs_active_resources_total`, which `promtool check metrics` rejects ("non-counter metrics
 * should not have "_total" suffix", exit 3). Their figures stay in `nodejs_active_handles`,
 * `nodejs_active_requests` and `nodejs_active_resources`, by type (their sum is the total).
 */
function dropMisnamedTotals(registry: import('prom-client').Registry): void {
  for (const metric of registry.getMetricsAsArray()) {
    // The typings say a numeric enum; at run time `type` is the string prom-client writes after # TYPE.
    const { name, type } = metric as unknown as { name: string; type: string };
    if (name.endsWith('_total') && type !== 'counter') registry.removeSingleMetric(name);
  }
}

/** One metric as prom-client's registry renders it (a custom collector: values set, not incremented). */
interface RawMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: RawValue[] }>;
}

function raw(name: string, help: string, type: RawMetric['type'], values: () => RawValue[]): RawMetric {
  return { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
}

/**
 * The workers' traffic per release, read from the master's status at scrape time: the
 * totals are cumulative per release, so they behave as Prometheus counters; a release's
 * series disappear once it is neither serving nor the most recent other one (traffic.ts).
 *
 * @example
 * for (const m of trafficMetrics(() => master.status().traffic?.releases ?? [])) registry.registerMetric(m as never);
 */
export function trafficMetrics(releases: () => ReleaseTraffic[]): RawMetric[] {
  const buckets = LATENCY_BOUNDS_MS.map((ms) => ms / 1000);
  return [
    raw('hitless_http_requests_total', 'Responses the workers finished, by release and status class (2xx, 3xx, 4xx, 5xx).', 'counter', () =>
      releases().flatMap((r) => Object.entries(r.requests).map(([cls, value]) => ({ labels: { release: r.release, class: cls }, value })))),
    raw('hitless_http_errors_total', 'Responses with a 5xx status, by release (what the canary rule counts as errors).', 'counter', () =>
      releases().map((r) => ({ labels: { release: r.release }, value: r.requests['5xx'] }))),
    raw('hitless_http_request_duration_seconds', 'Time from request to response finished, measured in the workers, by release.', 'histogram', () =>
      releases().flatMap((r): RawValue[] => {
        let cumulative = 0;
        const count = r.latency.reduce((a, b) => a + b, 0);
        return [
          ...buckets.map((le, i) => {
            cumulative += r.latency[i] ?? 0;
            return { metricName: 'hitless_http_request_duration_seconds_bucket', labels: { release: r.release, le }, value: cumulative };
          }),
          { metricName: 'hitless_http_request_duration_seconds_bucket', labels: { release: r.release, le: '+Inf' }, value: count },
          { metricName: 'hitless_http_request_duration_seconds_sum', labels: { release: r.release }, value: r.latencySumMs / 1000 },
          { metricName: 'hitless_http_request_duration_seconds_count', labels: { release: r.release }, value: count },
        ];
      })),
  ];
}
