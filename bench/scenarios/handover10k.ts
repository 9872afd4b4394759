/**
 * Scenario 5b: many idle keep-alive connections across one reload. N connections (one
 * request each, then idle) to a hitless master with 2 workers; one reload (SIGHUP); the
 * time from the switch to the old generation gone, from the master's own JSON log; the
 * master's and the workers' RSS and descriptors before, during (master, sampled) and after;
 * then one more request on every connection, on the connection it already had.
 * With hand-over every one should be answered by the new generation; with --no-handover
 * the old workers close them (a pooled client re-opens, one sending at that instant loses
 * its request), which is the contrast.
 */
import { fdCount, now, rssBytes, sleep, waitFor, freePort } from '../proc.js';
import { IdlePool, type SecondRound } from '../idle.js';
import { HitlessTarget, type MasterRecord } from '../targets/hitless.js';
import { appChildren } from '../targets/target.js';

export interface ProcFigures {
  rssMb: number;
  fds: number;
}

export interface Snapshot {
  master: ProcFigures;
  workers: ProcFigures[];
}

export interface IdleVariant {
  handover: boolean;
  /** The app's own drain deadline (the library's `timeout`); undefined = its default (10 s). */
  appShutdownMs?: number;
  /** After the measured reload, this many more (the same connections move again), for the master's RSS. */
  repeats?: number;
}

export interface IdleRow {
  target: string;
  handover: boolean;
  appShutdownMs?: number;
  connections: number;
  /** Opening them, one request each (ms). */
  openMs: number;
  before: Snapshot;
  /** The master's highest RSS and descriptor count, sampled every 20 ms during the reload. */
  masterPeak: ProcFigures;
  after: Snapshot;
  /** From the master's log: request → new generation ready (reload-ready), switch → old generation gone (reload-drained), whole reload (reload-done). */
  reload: { readyMs: number; switchToGoneMs: number; drainedMs: number; totalMs: number };
  /** The reload-drained record: where the old generation's connections went. */
  counts: { handedOver: number; returned: number; lost: number; drained: number; forced: number };
  /** Connections the server closed while idle, seen by the clients during the reload. */
  closedWhileIdle: number;
  /** Further reloads (variant.repeats): per reload, connections handed over, switch → gone ms, master RSS 2 s after. */
  repeats?: Array<{ handedOver: number; drainedMs: number; masterRssMb: number; masterFds: number }>;
  /** When the clients saw those closes, ms after the switch: first, median, last. */
  idleCloseMs?: { first: number; median: number; last: number };
  /** Responses that came while no request was in flight (status: count), e.g. 408 before a close. */
  unsolicited?: Record<string, number>;
  second: SecondRound;
}

const mb = (b: number): number => b / (1024 * 1024);

function figures(pid: number): ProcFigures {
  return { rssMb: mb(rssBytes(pid)), fds: fdCount(pid) };
}

function snapshot(masterPid: number): Snapshot {
  return { master: figures(masterPid), workers: appChildren(masterPid).map(figures) };
}

function closeTimes(times: number[], from: number | undefined): IdleRow['idleCloseMs'] {
  if (!times.length || from === undefined) return undefined;
  const ms = times.map((t) => t - from).sort((a, b) => a - b);
  return { first: ms[0] ?? 0, median: ms[Math.floor(ms.length / 2)] ?? 0, last: ms.at(-1) ?? 0 };
}

const timeOf = (r: MasterRecord | undefined): number => (r ? Date.parse(String(r.time)) : Number.NaN);

export async function idleHandover(connections: number, variant: IdleVariant, log: (line: string) => void): Promise<IdleRow> {
  const { handover, appShutdownMs } = variant;
  const target = new HitlessTarget({ port: await freePort(), handlerMs: 0, workers: 2 }, 'sighup', {
    name: `hitless 2w, ${handover ? 'hand-over (default)' : '--no-handover'}${appShutdownMs ? `, app drain deadline ${appShutdownMs / 1000} s` : ''}`,
    // The master's default drain budget (the target's own 10 s is for the load scenarios).
    args: ['--drain-timeout', '30s', ...(handover ? [] : ['--no-handover'])],
    env: {
      BENCH_TRACK_GENERATION: '1', BENCH_KEEPALIVE_MS: '600000',
      ...(appShutdownMs ? { BENCH_SHUTDOWN_MS: String(appShutdownMs) } : {}),
    },
  });
  let pool: IdlePool | undefined;
  try {
    await target.start();
    const masterPid = target.supervisorPid();
    if (!masterPid) throw new Error('no master pid');
    const t0 = now();
    pool = await IdlePool.open(target.port, connections);
    const openMs = now() - t0;
    // Let the workers settle (GC after the burst) before the "before" figures.
    await sleep(1000);
    const before = snapshot(masterPid);
    const idleBefore = pool.closedWhileIdle;
    const from = target.records.length;
    const peak: ProcFigures = { ...before.master };
    const sampler = setInterval(() => {
      const f = figures(masterPid);
      peak.rssMb = Math.max(peak.rssMb, f.rssMb);
      peak.fds = Math.max(peak.fds, f.fds);
    }, 20);
    let done: MasterRecord | undefined;
    try {
      await target.reload();
      await waitFor('reload-done', () => (done = target.records.slice(from).find((r) => r.event === 'reload-done')) !== undefined, 120_000, 20);
    } finally {
      clearInterval(sampler);
    }
    const mine = target.records.slice(from);
    const switched = mine.find((r) => r.event === 'reload-phase' && r.phase === 'switched');
    const ready = mine.find((r) => r.event === 'reload-ready');
    const drained = mine.find((r) => r.event === 'reload-drained');
    if (done?.level !== 'info' || !drained) throw new Error(`reload failed: ${JSON.stringify(done)}\n${target.output().slice(-2000)}`);
    const closedWhileIdle = pool.closedWhileIdle - idleBefore;
    await sleep(500);
    const after = snapshot(masterPid);
    const second = await pool.secondRound();
    const repeats: NonNullable<IdleRow['repeats']> = [];
    for (let i = 0; i < (variant.repeats ?? 0); i++) {
      const n = target.records.length;
      await target.reload();
      let rec: MasterRecord | undefined;
      await waitFor('reload-drained', () => (rec = target.records.slice(n).find((r) => r.event === 'reload-drained')) !== undefined, 120_000, 20);
      await sleep(2000);
      const f = figures(masterPid);
      repeats.push({ handedOver: Number(rec?.handedOver ?? 0), drainedMs: Number(rec?.ms ?? Number.NaN), masterRssMb: f.rssMb, masterFds: f.fds });
    }
    const row: IdleRow = {
      target: target.name,
      handover,
      appShutdownMs,
      connections,
      openMs,
      before,
      masterPeak: peak,
      after,
      reload: {
        readyMs: Number(ready?.ms ?? Number.NaN),
        switchToGoneMs: timeOf(drained) - timeOf(switched),
        drainedMs: Number(drained.ms ?? Number.NaN),
        totalMs: Number(done.ms ?? Number.NaN),
      },
      counts: {
        handedOver: Number(drained.handedOver ?? 0), returned: Number(drained.returned ?? 0), lost: Number(drained.lost ?? 0),
        drained: Number(drained.drained ?? 0), forced: Number(drained.forced ?? 0),
      },
      closedWhileIdle,
      ...(repeats.length ? { repeats } : {}),
      idleCloseMs: closeTimes(pool.idleCloseTimes.slice(idleBefore), switched?.at),
      unsolicited: { ...pool.unsolicited },
      second,
    };
    const w = (s: Snapshot): string => s.workers.map((x) => `${x.rssMb.toFixed(0)} MB/${x.fds} fds`).join(', ');
    log(
      `  ${row.target}: ${connections} idle connections opened in ${(openMs / 1000).toFixed(1)} s; switch → old generation gone ${row.reload.switchToGoneMs} ms ` +
        `(reload ${row.reload.totalMs} ms); ${JSON.stringify(row.counts)}; closed while idle ${closedWhileIdle} ${JSON.stringify(row.idleCloseMs)} (unsolicited responses ${JSON.stringify(row.unsolicited)}); ` +
        `master RSS ${before.master.rssMb.toFixed(1)} → peak ${peak.rssMb.toFixed(1)} → ${after.master.rssMb.toFixed(1)} MB, fds ${before.master.fds}/${peak.fds}/${after.master.fds}; ` +
        `workers before [${w(before)}] after [${w(after)}]; next request: ${second.ok}/${second.sent} ok, failed ${JSON.stringify(second.failed)}, ` +
        `not sent (closed) ${second.closedBefore}, by generation ${JSON.stringify(second.byGeneration)}` +
        (repeats.length ? `; ${repeats.length} more reloads: ${repeats.map((r) => `${r.handedOver} in ${r.drainedMs} ms, master ${r.masterRssMb.toFixed(1)} MB/${r.masterFds} fds`).join('; ')}` : ''),
    );
    return row;
  } finally {
    pool?.destroy();
    await target.stop().catch(() => undefined);
  }
}
