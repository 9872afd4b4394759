/**
 * Small statistics over load-client records: percentiles, per-kind counts, windows.
 */
import { Kind, kindNames, type KindName, type LoadResult } from './loadgen.js';

export function percentile(values: ArrayLike<number>, p: number): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const idx = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[idx] ?? Number.NaN;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export interface Window {
  from: number;
  to: number;
}

export function inWindows(t: number, windows: Window[]): boolean {
  for (const w of windows) if (t >= w.from && t <= w.to) return true;
  return false;
}

export interface RecordSummary {
  requests: number;
  ok2xx: number;
  non2xx: number;
  failed: number;
  byKind: Record<Exclude<KindName, 'ok'>, number>;
  p50: number;
  p99: number;
  max: number;
}

/** Summarise the records whose start time passes `keep`. Latency is over completed responses. */
export function summarise(r: LoadResult, keep: (start: number) => boolean = () => true): RecordSummary {
  const byKind = { reset: 0, refused: 0, timeout: 0, epipe: 0, closed: 0, other: 0 };
  const lat: number[] = [];
  let requests = 0;
  let ok2xx = 0;
  let non2xx = 0;
  let max = 0;
  for (let i = 0; i < r.count; i++) {
    const start = r.start[i] ?? 0;
    if (!keep(start)) continue;
    requests++;
    const kind = r.kind[i] ?? 0;
    if (kind === Kind.ok) {
      const status = r.status[i] ?? 0;
      if (status >= 200 && status < 300) ok2xx++;
      else non2xx++;
      const l = r.latency[i] ?? 0;
      lat.push(l);
      if (l > max) max = l;
    } else {
      const name = kindNames[kind] as Exclude<KindName, 'ok'>;
      byKind[name]++;
    }
  }
  const failed = requests - ok2xx - non2xx;
  return { requests, ok2xx, non2xx, failed, byKind, p50: percentile(lat, 50), p99: percentile(lat, 99), max };
}

export interface Bucket {
  /** Bucket start, ms since the run began. */
  t: number;
  p99: number;
  max: number;
  requests: number;
  failed: number;
}

/** Cut records into fixed time buckets (for the chart). */
export function buckets(r: LoadResult, origin: number, sizeMs: number, untilMs: number): Bucket[] {
  const n = Math.ceil(untilMs / sizeMs);
  const lat: number[][] = Array.from({ length: n }, () => []);
  const failed = new Array<number>(n).fill(0);
  const count = new Array<number>(n).fill(0);
  for (let i = 0; i < r.count; i++) {
    const b = Math.floor(((r.start[i] ?? 0) - origin) / sizeMs);
    if (b < 0 || b >= n) continue;
    count[b]!++;
    const status = r.status[i] ?? 0;
    if (r.kind[i] !== Kind.ok || status < 200 || status >= 300) failed[b]!++;
    else lat[b]!.push(r.latency[i] ?? 0);
  }
  return lat.map((l, b) => ({
    t: b * sizeMs,
    p99: percentile(l, 99),
    max: l.length ? Math.max(...l) : Number.NaN,
    requests: count[b] ?? 0,
    failed: failed[b] ?? 0,
  }));
}
