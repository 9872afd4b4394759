/**
 * Prometheus endpoint of the master (config `metrics: { listen }`, off by default).
 * prom-client is imported lazily so a master without metrics never loads it.
 *
 * Counters follow the master's events; gauges read `master.status()` at scrape time, so
 * they can never drift from what `hitless status` shows.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HitlessError } from '../errors.js';
import type { Logger } from '../core/logger.js';
import { parseMetricsListen } from '../config/metrics.js';
import type { MasterConfig } from '../config/types.js';
import type { MasterEvent, MasterHandle, ReleaseTraffic, WorkerState } from '../core/types.js';
import { LATENCY_BOUNDS_MS } from '../lib/stats.js';

/** Reload duration buckets, seconds: a reload is readyTimeout-bound, typically 0.2 s – 1 min. */
export const RELOAD_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const WORKER_STATES: WorkerState[] = ['starting', 'ready', 'draining', 'exited', 'failed'];

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** `host:port` actually bound (port resolved when 0 was asked). */
  address: string;
  /** Stops serving and detaches from the master. */
  close(): Promise<void>;
  /** The counters fed by events, now (an upgrade hands them to the next master's endpoint). */
  totals(): Promise<MetricTotals>;
}

const CONNECTION_OUTCOMES = ['handed_over', 'returned', 'lost', 'drained', 'cut'] as const;

/**
 * The values of the counters the endpoint keeps from the master's events. A master started
 * by an upgrade starts its endpoint from the old one's, so the counters go on (the reload
 * duration histogram starts over).
 */
export interface MetricTotals {
  reloads: { ok: number; failed: number };
  restarts: number;
  forced: number;
  connections: Record<(typeof CONNECTION_OUTCOMES)[number], number>;
}

/**
 * Starts the Prometheus endpoint at `config.metrics.listen` (GET /metrics). Exposes:
 * `hitless_reloads_total{result="ok|failed"}`, `hitless_reload_duration_seconds`,
 * `hitless_workers{state}`, `hitless_worker_restarts_total`,
 * `hitless_workers_forced_total`, `hitless_reload_requests_total{outcome="started|queued|merged"}`, `hitless_generation`, `hitless_master_uptime_seconds`,
 * the workers' traffic per release (`hitless_http_requests_total{release,class}`,
 * `hitless_http_errors_total{release}`, `hitless_http_request_duration_seconds{release}`;
 * only the serving release and the most recent other one), and prom-client's default
 * process metrics of the master.
 *
 * @example
 * ```ts
 * if (config.metrics) {
 *   const metrics = await startMetrics(config, master, logger);
 *   logger.info('metrics', { address: metrics.address });
 *   // on stop: await metrics.close();
 * }
 * ```
 */
export async function startMetrics(config: MasterConfig, master: MasterHandle, logger: Logger, seed?: MetricTotals): Promise<MetricsEndpoint> {
  if (!config.metrics) throw new HitlessError('ERR_CONFIG_INVALID', 'startMetrics called without config "metrics"');
  const { host, port } = parseMetricsListen(config.metrics.listen);
  const client = await import('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });

  const reloads = new client.Counter({
    name: 'hitless_reloads_total', help: 'Reloads by result (ok: the new generation went live).',
    labelNames: ['result'] as const, registers: [registry],
  });
  reloads.inc({ result: 'ok' }, seed?.reloads.ok ?? 0);
  reloads.inc({ result: 'failed' }, seed?.reloads.failed ?? 0);
  const duration = new client.Histogram({
    name: 'hitless_reload_duration_seconds', help: 'Time from reload start to outcome, seconds.',
    buckets: RELOAD_DURATION_BUCKETS, registers: [registry],
  });
  const restarts = new client.Counter({
    name: 'hitless_worker_restarts_total', help: 'Crashed workers restarted by the master.', registers: [registry],
  });
  const forced = new client.Counter({
    name: 'hitless_workers_forced_total', help: 'Old workers SIGKILLed at drainTimeout during reloads.', registers: [registry],
  });
  if (seed) {
    restarts.inc(seed.restarts);
    forced.inc(seed.forced);
  }
  const connections = new client.Counter({
    name: 'hitless_reload_connections_total',
    help: 'What became of the old generation\'s connections at reloads: handed_over (to the new generation), returned (no new worker could take them; drained), lost (neither side alive), drained (closed gracefully by the old workers), cut (destroyed at an old worker\'s own shutdown deadline).',
    labelNames: ['outcome'] as const, registers: [registry],
  });
  for (const outcome of CONNECTION_OUTCOMES) connections.inc({ outcome }, seed?.connections[outcome] ?? 0);
  new client.Gauge({
    name: 'hitless_workers', help: 'Workers by state.', labelNames: ['state'] as const, registers: [registry],
    collect() {
      const counts = new Map<string, number>(WORKER_STATES.map((s) => [s, 0]));
      for (const w of master.status().workers) counts.set(w.state, (counts.get(w.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
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
    'Reload requests (SIGHUP, hitless reload, watch, fetch, release) by what became of them: started at once, queued behind a reload or scale in progress, merged into a reload already queued. None is dropped.',
    'counter', () => Object.entries(master.status().reloadRequests ?? { started: 0, queued: 0, merged: 0 })
      .map(([outcome, value]) => ({ labels: { outcome }, value }))) as unknown as import('prom-client').Metric);
  for (const metric of trafficMetrics(() => master.status().traffic?.releases ?? [])) {
    registry.registerMetric(metric as unknown as import('prom-client').Metric);
  }

  const onEvent = (e: MasterEvent): void => {
    if (e.type === 'reload-done') {
      if (e.outcome.coalesced) return; // the same reload, reported to a second caller
      reloads.inc({ result: e.outcome.ok ? 'ok' : 'failed' });
      duration.observe(e.outcome.durationMs / 1000);
    } else if (e.type === 'worker-restart') {
      restarts.inc();
    } else if (e.type === 'reload-drained') {
      if (e.forced > 0) forced.inc(e.forced);
      connections.inc({ outcome: 'handed_over' }, e.handedOver ?? 0);
      connections.inc({ outcome: 'returned' }, e.returned ?? 0);
      connections.inc({ outcome: 'lost' }, e.lost ?? 0);
      connections.inc({ outcome: 'drained' }, e.drained ?? 0);
      connections.inc({ outcome: 'cut' }, e.cut ?? 0);
    }
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
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
      reject(new HitlessError('ERR_BIND',
        `config "metrics.listen": cannot listen on ${config.metrics!.listen}: ${err.code ?? err.message}`, { cause: err }));
    });
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => logger.error('metrics server error', { error: String(err) }));
  master.on('event', onEvent);
  const a = server.address() as AddressInfo;
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  logger.info('metrics serving', { address, path: '/metrics' });

  const value = async (metric: { get(): Promise<{ values: { labels: Partial<Record<string, string | number>>; value: number }[] }> }, label?: [string, string]): Promise<number> =>
    (await metric.get()).values.find((v) => !label || v.labels[label[0]] === label[1])?.value ?? 0;
  return {
    address,
    async totals() {
      const byOutcome = await Promise.all(CONNECTION_OUTCOMES.map(async (o) => [o, await value(connections, ['outcome', o])] as const));
      return {
        reloads: { ok: await value(reloads, ['result', 'ok']), failed: await value(reloads, ['result', 'failed']) },
        restarts: await value(restarts),
        forced: await value(forced),
        connections: Object.fromEntries(byOutcome) as MetricTotals['connections'],
      };
    },
    async close() {
      master.off('event', onEvent);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      registry.clear();
    },
  };
}

type RawValue = { metricName?: string; labels: Record<string, string | number>; value: number };

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
