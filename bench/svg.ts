/**
 * A hand-written SVG chart (no charting dependency): stacked panels, one per target, of
 * p99 latency per 100 ms (log scale) with reload windows shaded and failed requests as
 * red bars in a strip under each panel.
 */
import type { Bucket, Window } from './stats.js';

export interface Panel {
  title: string;
  buckets: Bucket[];
  windows: Window[];
  durationMs: number;
}

const W = 920;
const PANEL_H = 170;
const STRIP_H = 44;
const GAP = 46;
const LEFT = 64;
const RIGHT = 16;
const TOP = 58;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const fmt = (n: number): string => (Math.round(n * 10) / 10).toString();

/**
 * Render panels to an SVG document.
 *
 * @example
 * writeFileSync('docs/bench-reload.svg', chartSvg('Reload under load', [panel]));
 */
export function chartSvg(title: string, panels: Panel[]): string {
  const plotW = W - LEFT - RIGHT;
  const height = TOP + panels.length * (PANEL_H + STRIP_H + GAP) + 10;
  const allLat = panels.flatMap((p) => p.buckets.map((b) => b.p99)).filter((x) => Number.isFinite(x));
  const maxLat = Math.max(10, ...allLat);
  const minLat = 0.1;
  const logMin = Math.log10(minLat);
  const logMax = Math.ceil(Math.log10(maxLat));
  const maxFail = Math.max(1, ...panels.flatMap((p) => p.buckets.map((b) => b.failed)));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`);
  panels.forEach((p, i) => {
    const y0 = TOP + i * (PANEL_H + STRIP_H + GAP) + 18;
    const x = (ms: number): number => LEFT + (ms / p.durationMs) * plotW;
    const y = (lat: number): number => {
      const l = Math.log10(Math.max(minLat, lat));
      return y0 + PANEL_H - ((l - logMin) / (logMax - logMin)) * PANEL_H;
    };
    const failed = p.buckets.reduce((a, b) => a + b.failed, 0);
    out.push(`<text x="${LEFT}" y="${y0 - 6}" font-size="13" font-weight="bold">${esc(p.title)} — ${failed} failed requests</text>`);
    // Reload windows across both the plot and the strip.
    for (const w of p.windows) {
      out.push(`<rect x="${fmt(x(w.from))}" y="${y0}" width="${fmt(Math.max(1, x(w.to) - x(w.from)))}" height="${PANEL_H + STRIP_H}" fill="#f2c14e" fill-opacity="0.3"/>`);
    }
    out.push(`<rect x="${LEFT}" y="${y0}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#888"/>`);
    for (let e = Math.ceil(logMin); e <= logMax; e++) {
      const v = 10 ** e;
      const yy = fmt(y(v));
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
      out.push(`<text x="${LEFT - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`);
    }
    // p99 line: one point per bucket, gaps where a bucket had no successful response.
    let d = '';
    let pen = false;
    for (const b of p.buckets) {
      if (!Number.isFinite(b.p99)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${fmt(x(b.t + 50))},${fmt(y(b.p99))}`;
      pen = true;
    }
    out.push(`<path d="${d}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>`);
    // Failure strip.
    const sy = y0 + PANEL_H;
    out.push(`<rect x="${LEFT}" y="${sy}" width="${plotW}" height="${STRIP_H}" fill="none" stroke="#888"/>`);
    const bw = Math.max(1, (100 / p.durationMs) * plotW - 0.5);
    for (const b of p.buckets) {
      if (!b.failed) continue;
      const h = Math.max(2, (b.failed / maxFail) * (STRIP_H - 4));
      out.push(`<rect x="${fmt(x(b.t))}" y="${fmt(sy + STRIP_H - h)}" width="${fmt(bw)}" height="${fmt(h)}" fill="#c0392b"/>`);
    }
    out.push(`<text x="${LEFT - 6}" y="${sy + STRIP_H / 2}" text-anchor="end" dominant-baseline="middle" fill="#c0392b">failed</text>`);
    for (let s = 0; s <= p.durationMs / 1000; s += 5) {
      out.push(`<text x="${fmt(x(s * 1000))}" y="${sy + STRIP_H + 14}" text-anchor="middle">${s} s</text>`);
    }
  });
  out.push(
    `<text x="${LEFT}" y="40" fill="#555">blue: p99 latency per 100 ms · shaded: reload (request → old generation gone) · red: failed requests per 100 ms (strip max ${maxFail})</text>`,
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}
