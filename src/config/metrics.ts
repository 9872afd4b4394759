/**
 * The one parser of `metrics.listen` (the config validator and the metrics endpoint both
 * use it, so a bare port means the same thing to both).
 */
import { isIP } from 'node:net';
import { HitlessError } from '../errors.js';

/** Host used when `metrics.listen` names only a port: never expose metrics by accident. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

/**
 * Splits `metrics.listen` into host and port: `9100`, `:9100`, `0.0.0.0:9100` (or `*:9100`),
 * `[::1]:9100`. Unlike worker listeners, a port without a host binds
 * {@link DEFAULT_METRICS_HOST}: metrics are never exposed to the network by accident.
 *
 * @example
 * ```ts
 * parseMetricsListen(':9100'); // { host: '127.0.0.1', port: 9100 }
 * ```
 */
export function parseMetricsListen(listen: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new HitlessError('ERR_CONFIG_INVALID',
      `config "metrics.listen": ${JSON.stringify(listen)} is not [host:]port; use for example "127.0.0.1:9100" or ":9100"`);
  }
  const given = m[1] ?? (m[2] || DEFAULT_METRICS_HOST);
  const host = given === '*' ? '0.0.0.0' : given === 'localhost' ? '127.0.0.1' : given;
  if (isIP(host) === 0) {
    throw new HitlessError('ERR_CONFIG_INVALID',
      `config "metrics.listen": ${JSON.stringify(given)} is not an IP address; use for example "127.0.0.1:9100" (hostnames are not resolved)`);
  }
  return { host, port };
}
