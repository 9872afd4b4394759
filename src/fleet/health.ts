/**
 * The health gate after a host's release: its health URL, asked on the host's own
 * listener (not through the balancer, which would hide a bad host behind good ones), must
 * answer 2xx on every probe for the whole settle time. Each probe opens a new connection,
 * so it reaches a worker of the new generation rather than a kept-alive old one.
 */
import http from 'node:http';
import https from 'node:https';

/** Time between probes while settling. */
export const PROBE_INTERVAL_MS = 250;
/** A probe without a response by then counts as failed. */
export const PROBE_TIMEOUT_MS = 2_000;

export interface ProbeResult {
  ok: boolean;
  status?: number;
  error?: string;
}

export type Probe = (url: string) => Promise<ProbeResult>;

/**
 * One GET on a fresh connection; ok when the status is 2xx.
 *
 * @example
 * await probeHealth('http://10.0.0.2:8080/healthz'); // { ok: true, status: 200 }
 */
export const probeHealth: Probe = (url) => new Promise((resolve) => {
  const client = url.startsWith('https:') ? https : http;
  const req = client.get(url, { agent: false, timeout: PROBE_TIMEOUT_MS, headers: { 'user-agent': 'hitless-deploy' } }, (res) => {
    res.resume();
    const status = res.statusCode ?? 0;
    res.on('end', () => resolve({ ok: status >= 200 && status < 300, status }));
    res.on('error', (err) => resolve({ ok: false, status, error: err.message }));
  });
  req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
  req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? err.message }));
});

export interface SettleResult {
  ok: boolean;
  probes: number;
  /** The first failed probe. */
  failure?: ProbeResult;
}

/**
 * Probes `url` at once and then every {@link PROBE_INTERVAL_MS} until `settleMs` have
 * passed; stops at the first answer that is not 2xx.
 *
 * @example
 * const r = await settleHealth('http://10.0.0.2:8080/healthz', 5000);
 * if (!r.ok) rollback(`health answered ${r.failure?.status ?? r.failure?.error}`);
 */
export async function settleHealth(url: string, settleMs: number, probe: Probe = probeHealth, now: () => number = Date.now): Promise<SettleResult> {
  const end = now() + settleMs;
  let probes = 0;
  for (;;) {
    const result = await probe(url);
    probes += 1;
    if (!result.ok) return { ok: false, probes, failure: result };
    const left = end - now();
    if (left <= 0) return { ok: true, probes };
    await new Promise((r) => setTimeout(r, Math.min(PROBE_INTERVAL_MS, left)));
  }
}

/**
 * What a failed probe got, for messages.
 *
 * @example
 * describeProbe({ ok: false, status: 503 }); // 'status 503'
 * describeProbe({ ok: false, error: 'ECONNREFUSED' }); // 'ECONNREFUSED'
 */
export function describeProbe(r: ProbeResult): string {
  return r.status !== undefined && r.status > 0 ? `status ${r.status}` : (r.error ?? 'no answer');
}
