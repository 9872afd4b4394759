/**
 * Scenario 5a: paced keep-alive users across reloads. Each user is its own keep-alive
 * connection that POSTs, thinks 0–1.2 s, and POSTs again, the way browsers, API clients
 * and proxy pools use a server: most connections are idle most of the time, which is when
 * a drain closes them and a client sending at that instant loses its request (RFC 9112
 * §9.6). Saturating load never shows this (a busy connection is never idle).
 *
 * The load client (bench/loadgen.ts) notices a connection the server closed while idle
 * and opens a new one (counted in `opened`), like a pooled client. wrk, run in a second
 * pass with the same think time (Lua `delay()`), is the independent count. Neither
 * re-sends a lost request.
 */
import { fdCount, freePort, now, sleep } from '../proc.js';
import { startLoad } from '../loadgen.js';
import { buckets, inWindows, median, summarise, type Bucket, type RecordSummary, type Window } from '../stats.js';
import { startWrk, wrkFailures, type WrkResult } from '../wrk.js';
import { HitlessTarget } from '../targets/hitless.js';
import { Pm2Target } from '../targets/pm2.js';
import { reloadAndWait, type Target, type TargetOptions } from '../targets/target.js';

export type PacedKind = 'hitless-handover' | 'hitless-no-handover' | 'pm2' | 'pm2-plain';

export interface PacedOptions {
  users: number;
  thinkMs: [number, number];
  reloads: number;
  /** Reload k is requested `everyMs` after reload k-1 was (or at once, if that one took longer). */
  everyMs: number;
  /** Steady load before the first reload, and after the last one ends. */
  leadMs: number;
  /** Warm-up excluded from "steady" (from the start of the load). */
  steadyAfterMs: number;
  tailMs: number;
  /** A reload window lasts from the request until this long after the old processes are gone. */
  windowTailMs: number;
  /**
   * Steady load between reloads: reload k is requested no sooner than this long after reload
   * k-1's window ended, so steady requests are measured between the windows, at the same
   * times, not only before and after them (0 or absent: back to back).
   */
  gapMs?: number;
  /** After each window, this long counts as neither reload nor steady (the reload's after-effects). */
  settleMs?: number;
  workers: number;
  /** wrk connections with the same think time, beside the load client; 0 = no wrk. */
  wrkConnections: number;
  log: (line: string) => void;
}

export interface HandoverSums {
  handedOver: number;
  returned: number;
  lost: number;
  drained: number;
  forced: number;
}

export interface PacedRow {
  target: string;
  kind: PacedKind;
  users: number;
  thinkMs: [number, number];
  leadMs: number;
  tailMs?: number;
  steadyAfterMs?: number;
  /** hitless: the master's highest descriptor count during the pass (connections in transit). */
  masterPeakFds?: number;
  reloads: number;
  reloadErrors: string[];
  /** From the request to the old processes gone (observed through /proc). */
  reloadMs: { median: number; max: number };
  load: { all: RecordSummary; steady: RecordSummary; reload: RecordSummary };
  /** Connections the load client opened, and how many the server closed while idle. */
  opened: number;
  idleClosed: number;
  /** (opened - users) / reloads. */
  reopenedPerReload: number;
  codes: Record<string, number>;
  /** The wrk pass (same think time, its own fresh target and reloads). */
  wrk?: { connections: number; masterPeakFds?: number; reloads: number; reloadErrors: string[]; reloadMs: { median: number; max: number }; handover: PacedRow['handover'] } &
    Pick<WrkResult, 'requests' | 'errors' | 'non2xx' | 'p99'>;
  /** hitless: the master's reload-drained records, summed, and per reload. */
  handover?: HandoverSums & { perReload: HandoverSums[] };
  /** Load duration, first request to stop. */
  durationMs: number;
  /** 500 ms buckets of the load client's records and the reload windows, ms from the start. */
  timeline: { buckets: Bucket[]; windows: Window[] };
}

const BODY = '{"user":1}';

function makeTarget(kind: PacedKind, o: TargetOptions): Target {
  const env = { BENCH_TRACK_GENERATION: '1' };
  switch (kind) {
    case 'hitless-handover':
      return new HitlessTarget(o, 'sighup', { name: `hitless ${o.workers}w, hand-over (default)`, env });
    case 'hitless-no-handover':
      return new HitlessTarget(o, 'sighup', { name: `hitless ${o.workers}w, --no-handover`, args: ['--no-handover'], env });
    case 'pm2': return new Pm2Target(o);
    case 'pm2-plain': return new Pm2Target({ ...o, plainApp: true });
  }
}

function handoverSums(t: HitlessTarget): PacedRow['handover'] {
  const perReload = t.events('reload-drained').map((e) => ({
    handedOver: Number(e.handedOver ?? 0), returned: Number(e.returned ?? 0), lost: Number(e.lost ?? 0),
    drained: Number(e.drained ?? 0), forced: Number(e.forced ?? 0),
  }));
  const sum = (k: keyof HandoverSums): number => perReload.reduce((a, x) => a + x[k], 0);
  return { handedOver: sum('handedOver'), returned: sum('returned'), lost: sum('lost'), drained: sum('drained'), forced: sum('forced'), perReload };
}

export interface Pass {
  name: string;
  /** hitless: the master's highest descriptor count (sampled every 20 ms): connections it holds in transit. */
  masterPeakFds?: number;
  origin: number;
  stopAt: number;
  windows: Window[];
  errors: string[];
  handover: PacedRow['handover'];
}

/** A fresh target, `client` started, steady lead, the reloads, a steady tail, stop. */
async function pass<T>(kind: PacedKind, o: PacedOptions, client: (port: number) => { stop(): Promise<T> }): Promise<Pass & { result: T }> {
  return runPass(makeTarget(kind, { port: await freePort(), handlerMs: 0, workers: o.workers }), o, client);
}

/** When a pass reloads: after `leadMs`, `reloads` times `everyMs` apart (or back to back; at least `gapMs` between windows), then `tailMs`. */
export type PassSchedule = Pick<PacedOptions, 'leadMs' | 'reloads' | 'everyMs' | 'windowTailMs' | 'tailMs' | 'gapMs' | 'settleMs'>;

/**
 * Starts `target`, starts `client` on its port, reloads it on `o`'s schedule, stops the
 * client and the target; the reload windows are request → old processes gone + windowTailMs.
 */
export async function runPass<T>(target: Target, o: PassSchedule, client: (port: number) => { stop(): Promise<T> }): Promise<Pass & { result: T }> {
  try {
    await target.start();
    const master = target instanceof HitlessTarget ? target.supervisorPid() : undefined;
    let masterPeakFds = master ? fdCount(master) : undefined;
    const sampler = master ? setInterval(() => (masterPeakFds = Math.max(masterPeakFds ?? 0, fdCount(master))), 20) : undefined;
    const origin = now();
    const run = client(target.port);
    const windows: Window[] = [];
    const errors: string[] = [];
    let at = origin + o.leadMs;
    for (let k = 0; k < o.reloads; k++) {
      if (now() < at) await sleep(at - now());
      try {
        const r = await reloadAndWait(target);
        windows.push({ from: r.requestedAt, to: r.completeAt + o.windowTailMs });
      } catch (err) {
        errors.push(err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err));
      }
      at += o.everyMs;
      const ended = windows.at(-1)?.to;
      if (o.gapMs && ended !== undefined) at = Math.max(at, ended + o.gapMs);
    }
    const lastEnd = windows.at(-1)?.to ?? now();
    await sleep(Math.max(0, lastEnd - o.windowTailMs + o.tailMs - now()));
    const stopAt = now();
    clearInterval(sampler);
    const result = await run.stop();
    const handover = target instanceof HitlessTarget ? handoverSums(target) : undefined;
    return { name: target.name, masterPeakFds, origin, stopAt, windows, errors, handover, result };
  } finally {
    await target.stop().catch(() => undefined);
  }
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

const reloadMs = (p: Pass, o: PacedOptions): { median: number; max: number } => ({
  median: median(p.windows.map((x) => x.to - o.windowTailMs - x.from)),
  max: Math.max(...p.windows.map((x) => x.to - o.windowTailMs - x.from)),
});

/**
 * Two passes on fresh targets with the same reload schedule: the load client's users
 * (per-request records), then wrk's (an independent count). Run apart, not at once: on
 * these 2 shared cores 3000 users at once starve the workers (5 s timeouts without any
 * reload), which would measure the machine, not the reloads.
 */
export async function pacedUsers(kind: PacedKind, o: PacedOptions): Promise<PacedRow> {
  const a = await pass(kind, o, (port) => startLoad({
    port, connections: o.users, thinkMs: o.thinkMs, keepAlive: true, durationMs: 300_000,
    method: 'POST', body: BODY, headers: { 'Content-Type': 'application/json' },
  }));
  const records = a.result;
  const b = o.wrkConnections > 0
    ? await pass(kind, o, (port) => startWrk({ port, connections: o.wrkConnections, durationMs: 300_000, keepAlive: true, paced: { thinkMs: o.thinkMs, body: BODY } }))
    : undefined;
  // Warm-up: the first requests open the connections, all within the first think time, and
  // queue behind each other's connects; two think times later the load has its steady shape.
  const steadyFrom = a.origin + o.steadyAfterMs;
  const steady = (t: number): boolean => t > steadyFrom && t < a.stopAt - 200 && !inWindows(t, a.windows);
  const reloads = a.windows.length;
  const row: PacedRow = {
    target: a.name,
    kind,
    users: o.users,
    thinkMs: o.thinkMs,
    leadMs: o.leadMs,
    tailMs: o.tailMs,
    steadyAfterMs: o.steadyAfterMs,
    ...(a.masterPeakFds !== undefined ? { masterPeakFds: a.masterPeakFds } : {}),
    reloads,
    reloadErrors: a.errors,
    reloadMs: reloadMs(a, o),
    load: { all: summarise(records), steady: summarise(records, steady), reload: summarise(records, (t) => inWindows(t, a.windows)) },
    opened: records.opened,
    idleClosed: records.idleClosed,
    reopenedPerReload: reloads ? (records.opened - o.users) / reloads : Number.NaN,
    codes: records.codes,
    handover: a.handover,
    durationMs: a.stopAt - a.origin,
    timeline: {
      buckets: buckets(records, a.origin, 500, a.stopAt - a.origin).map((b) => ({ ...b, p99: round1(b.p99), max: round1(b.max) })),
      windows: a.windows.map((w) => ({ from: Math.round(w.from - a.origin), to: Math.round(w.to - a.origin) })),
    },
  };
  if (b) {
    const w = b.result;
    row.wrk = {
      connections: o.wrkConnections, ...(b.masterPeakFds !== undefined ? { masterPeakFds: b.masterPeakFds } : {}), requests: w.requests, errors: w.errors, non2xx: w.non2xx, p99: w.p99,
      reloads: b.windows.length, reloadErrors: b.errors, reloadMs: reloadMs(b, o), handover: b.handover,
    };
  }
  const h = row.handover;
  const f = (x: RecordSummary): string => `${x.failed} failed ${JSON.stringify(x.byKind)}`;
  o.log(
    `  ${row.target}: ${reloads} reloads (median ${Math.round(row.reloadMs.median)} ms, max ${Math.round(row.reloadMs.max)}); loadgen ${row.load.all.requests} req, ` +
      `${f(row.load.all)} (steady ${row.load.steady.failed}, reload windows ${row.load.reload.failed}), ${row.load.all.non2xx} non-2xx, opened ${row.opened} ` +
      `(${row.reopenedPerReload.toFixed(1)}/reload), idle-closed ${row.idleClosed}; p99 steady ${row.load.steady.p99.toFixed(1)} / reload ${row.load.reload.p99.toFixed(1)} ms` +
      (h ? `; handed over ${h.handedOver}, returned ${h.returned}, lost ${h.lost}, drained ${h.drained}, forced ${h.forced}; master peak fds ${row.masterPeakFds}` : '') +
      (a.errors.length ? `; reload errors: ${a.errors.join(' | ')}` : ''),
  );
  if (row.wrk) {
    const w = row.wrk;
    o.log(
      `  ${row.target} (wrk pass, ${w.connections} connections): ${w.reloads} reloads (median ${Math.round(w.reloadMs.median)} ms); ${w.requests} req, ${wrkFailures(w)} failed ${JSON.stringify(w.errors)}` +
        (w.handover ? `; handed over ${w.handover.handedOver}, returned ${w.handover.returned}, lost ${w.handover.lost}, drained ${w.handover.drained}, forced ${w.handover.forced}` : '') +
        (w.reloadErrors.length ? `; reload errors: ${w.reloadErrors.join(' | ')}` : ''),
    );
  }
  return row;
}
