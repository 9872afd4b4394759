/**
 * Section 5 of docs/BENCHMARKS.md (connection hand-over) and its verdicts, from the
 * paced-users and idle-connections scenarios.
 */
import type { HandoverResults, Verdict } from './results.js';
import type { PacedRow } from './scenarios/paced.js';
import type { IdleRow, Snapshot } from './scenarios/handover10k.js';
import { wrkFailures } from './wrk.js';

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toString() : '–');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');
const n0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const isHandover = (x: { target: string }): boolean => x.target.includes('hand-over (default)');
const pacedFailed = (x: PacedRow): number => x.load.all.failed + x.load.all.non2xx;

export function handoverVerdicts(h: HandoverResults): Verdict[] {
  const out: Verdict[] = [];
  const paced = h.paced.find(isHandover);
  if (paced) {
    const wf = paced.wrk ? wrkFailures(paced.wrk) + paced.wrk.non2xx : 0;
    const lost = paced.handover?.lost ?? 0;
    out.push({
      target: `${paced.users} paced keep-alive users across ${paced.reloads} reloads (hand-over): 0 failed, no connection re-opened`,
      met: pacedFailed(paced) === 0 && wf === 0 && paced.opened === paced.users && lost === 0 && paced.reloadErrors.length === 0,
      measured: `${pacedFailed(paced)} of ${paced.load.all.requests} failed, ${paced.opened - paced.users} re-opened` +
        (paced.wrk ? `; wrk (${paced.wrk.connections} connections): ${wf} of ${paced.wrk.requests} failed` : '') +
        `; ${paced.handover?.handedOver ?? 0} handed over, ${lost} lost`,
    });
    const ratio = paced.load.reload.p99 / paced.load.steady.p99;
    out.push({
      target: 'paced users (hand-over): p99 in reload windows <= 2x steady p99',
      met: ratio <= 2,
      measured: `${f2(ratio)}x (${f1(paced.load.reload.p99)} vs ${f1(paced.load.steady.p99)} ms)`,
    });
  }
  const idle = h.idle.find((x) => x.handover);
  if (idle) {
    out.push({
      target: `${n0(idle.connections)} idle keep-alive connections across a reload (hand-over): every next request answered on its own connection`,
      met: idle.second.ok === idle.connections && idle.closedWhileIdle === 0 && idle.counts.lost === 0,
      measured: `${n0(idle.second.ok)} of ${n0(idle.connections)} answered, ${idle.closedWhileIdle} closed, ${idle.counts.lost} lost; switch → old generation gone ${f0(idle.reload.switchToGoneMs)} ms`,
    });
  }
  return out;
}

const sums = (h: PacedRow['handover']): string => (h ? `${h.handedOver} / ${h.returned} / ${h.lost} / ${h.drained}` : '– (not reported)');

function pacedTable(rows: PacedRow[]): string {
  return table(
    [
      'target', 'reloads', 'reload ms median / max', 'requests', 'failed', '… in steady / reload windows', '… reset / closed / timeout / other', 'non-2xx',
      'connections opened', 're-opened per reload', 'p99 ms steady / reload windows', 'old connections handed over / returned / lost / closed by drain', 'master\'s peak fds',
    ],
    rows.map((x) => {
      const k = x.load.all.byKind;
      return [
        x.target, String(x.reloads), `${f0(x.reloadMs.median)} / ${f0(x.reloadMs.max)}`,
        String(x.load.all.requests), `**${x.load.all.failed}**`, `${x.load.steady.failed} / ${x.load.reload.failed}`,
        `${k.reset} / ${k.closed + k.epipe} / ${k.timeout} / ${k.refused + k.other}`, String(x.load.all.non2xx),
        String(x.opened), `**${f1(x.reopenedPerReload)}**`, `${f1(x.load.steady.p99)} / ${f1(x.load.reload.p99)}`, sums(x.handover),
        x.masterPeakFds === undefined ? '–' : String(x.masterPeakFds),
      ];
    }),
  );
}

function wrkTable(rows: PacedRow[]): string {
  return table(
    ['target', 'reloads', 'reload ms median / max', 'wrk requests', 'wrk failed', '… connect / read / write / timeout', 'non-2xx', 'old connections handed over / returned / lost / closed by drain', 'master\'s peak fds'],
    rows.filter((x) => x.wrk).map((x) => {
      const w = x.wrk!;
      return [
        x.target, String(w.reloads), `${f0(w.reloadMs.median)} / ${f0(w.reloadMs.max)}`, String(w.requests), `**${wrkFailures(w)}**`,
        `${w.errors.connect} / ${w.errors.read} / ${w.errors.write} / ${w.errors.timeout}`, String(w.non2xx), sums(w.handover),
        w.masterPeakFds === undefined ? '–' : String(w.masterPeakFds),
      ];
    }),
  );
}

function workers(s: Snapshot, what: 'rssMb' | 'fds'): string {
  return s.workers.map((w) => (what === 'rssMb' ? f1(w.rssMb) : String(w.fds))).join(' + ');
}

function idleTable(rows: IdleRow[]): string {
  const line = (label: string, f: (x: IdleRow) => string): string[] => [label, ...rows.map(f)];
  return table(['', ...rows.map((x) => x.target)], [
    line('idle connections (one request each, then idle)', (x) => n0(x.connections)),
    line('time to open them', (x) => `${f1(x.openMs / 1000)} s`),
    line('reload: request → new generation ready (`reload-ready`)', (x) => `${f0(x.reload.readyMs)} ms`),
    line('**switch → old generation gone** (`switched` → `reload-drained`)', (x) => `**${f0(x.reload.switchToGoneMs)} ms**`),
    line('whole reload (`reload-done`)', (x) => `${f0(x.reload.totalMs)} ms`),
    line('handed over / returned / lost', (x) => `${n0(x.counts.handedOver)} / ${x.counts.returned} / ${x.counts.lost}`),
    line('closed by the old workers\' drain (their count)', (x) => n0(x.counts.drained)),
    line('in none of those counts (closed at the app\'s drain deadline)', (x) => n0(x.connections - x.counts.handedOver - x.counts.returned - x.counts.lost - x.counts.drained)),
    line('closes seen by the clients while idle (ms after the switch: first – last)', (x) => `${n0(x.closedWhileIdle)}${x.idleCloseMs ? ` (${f0(x.idleCloseMs.first)} – ${f0(x.idleCloseMs.last)})` : ''}`),
    line('workers SIGKILLed at the drain deadline', (x) => String(x.counts.forced)),
    line('**next request on its old connection: answered**', (x) => `**${n0(x.second.ok)} of ${n0(x.connections)}**`),
    line('… failed (reset / closed / timeout / other)', (x) => `${x.second.failed.reset} / ${x.second.failed.closed} / ${x.second.failed.timeout} / ${x.second.failed.other}`),
    line('… not sent: connection already closed (a client must re-open)', (x) => n0(x.second.closedBefore)),
    line('… answered by generation', (x) => Object.entries(x.second.byGeneration).map(([g, c]) => `${g}: ${n0(c)}`).join(', ') || '–'),
    line('master RSS before / peak during / after (MB)', (x) => `${f1(x.before.master.rssMb)} / ${f1(x.masterPeak.rssMb)} / ${f1(x.after.master.rssMb)}`),
    line('master fds before / peak during / after', (x) => `${x.before.master.fds} / ${x.masterPeak.fds} / ${x.after.master.fds}`),
    line('workers RSS before (old) → after (new), MB', (x) => `${workers(x.before, 'rssMb')} → ${workers(x.after, 'rssMb')}`),
    line('workers fds before → after', (x) => `${workers(x.before, 'fds')} → ${workers(x.after, 'fds')}`),
    ...(rows.some((x) => x.repeats?.length)
      ? [line('then the same connections moved again: handed over, ms, master RSS 2 s after (MB)', (x) =>
          x.repeats?.length ? x.repeats.map((r) => `${n0(r.handedOver)}, ${f0(r.drainedMs)} ms, ${f1(r.masterRssMb)}`).join('; ') : '–')]
      : []),
  ]);
}

/** Section 5 of docs/BENCHMARKS.md. */
export function handoverMarkdown(h: HandoverResults): string {
  const m = h.machine;
  const parts: string[] = [];
  const paced = h.paced[0];
  parts.push(
    `## 5. Connection hand-over\n\n` +
      `On a reload hitless's old workers hand their idle keep-alive connections to the new generation over the worker channel instead of closing them ` +
      `(docs/ARCHITECTURE.md, "Connection hand-over"); \`--no-handover\` turns that off. Measured on ${h.date} with\n\n` +
      `\`\`\`sh\nnpm run build && ${h.command.replace(/^npm run bench --/, 'node build/bench/run.js')}\n\`\`\`\n\n` +
      `${m.nproc} cores shared with other engineers' test suites: load average (1 min) **${f2(m.loadavg.start)} at the start** and ${f2(m.loadavg.end)} at the end ` +
      `(hitless ${m.hitlessCommit}, node ${m.node}, PM2 ${m.pm2}, wrk ${m.wrk}` +
      `${h.resultsFile ? `; raw numbers: [${h.resultsFile}](../${h.resultsFile})` : ''}).`,
  );
  if (paced) {
    parts.push(
      `### 5a. Paced keep-alive users across reloads\n\n` +
        `${paced.users} users, each its own keep-alive connection (bench/loadgen.ts), each POSTing a small JSON body and then thinking ${paced.thinkMs[0]}–${paced.thinkMs[1]} ms (uniform) ` +
        `before the next: most connections are idle most of the time, the traffic browsers, API clients and proxy pools make. After ${f0(paced.leadMs / 1000)} s of steady load, ` +
        `${paced.reloads} reloads of 2 workers, requested 2 s apart or as soon as the previous one ended (hitless: SIGHUP, drain budget 10 s; PM2: \`pm2 reload\`, \`kill_timeout\` 10 s), then ${f0((paced.tailMs ?? 3000) / 1000)} s of steady load. ` +
        `The load client notices a connection the server closed while idle and opens a new one for the next request, like a pooled client: such a close is not a failure, ` +
        `but the re-opened connection is counted ("re-opened per reload" = (opened − users) / reloads). A request lost on a reset or closed connection, or without an answer within 5 s, is failed and never re-sent. ` +
        `Reload window = from the reload request until 1 s after the old processes are gone; "steady" = the rest, after the first ${f1((paced.steadyAfterMs ?? paced.thinkMs[1] + 300) / 1000)} s (the users' connects). ` +
        `Hand-over figures are the master's \`reload-drained\` records summed over the reloads; "master's peak fds" is its descriptor count sampled every 20 ms ` +
        `(29 at rest: the rest are connections it holds in transit between an old and a new worker).\n\n` +
        pacedTable(h.paced),
    );
    if (h.paced.some((x) => x.wrk)) {
      parts.push(
        `**wrk, the second opinion**: a second pass on a fresh target with the same reload schedule, wrk with ${paced.wrk?.connections ?? '–'} connections and the same think time ` +
          `(Lua \`delay()\` returning \`math.random(${paced.thinkMs[0]}, ${paced.thinkMs[1]})\`, POST). Run apart from the load client, not beside it: on these 2 shared cores ` +
          `3000 users at once already timed out requests without any reload. wrk counts differently: a reset connection (ECONNRESET) is a read error; ` +
          `a connection closed with a FIN it re-opens silently, even with a request in flight on it (not counted); a \"timeout\" is a response that came after more than 5 s (answered, but late).\n\n` +
          wrkTable(h.paced),
      );
    }
  }
  if (h.idle.length) {
    const x = h.idle[0]!;
    parts.push(
      `### 5b. ${n0(x.connections)} idle connections across one reload\n\n` +
        `${n0(x.connections)} keep-alive connections to a master with 2 workers (bench/idle.ts), one request each, then idle (the app's keep-alive timeout raised to 10 min so they stay open; ` +
        `nothing else raised: the open-files limit here is 20,000 per process); one SIGHUP reload with the master's default 30 s drain budget; then one more request on every connection ` +
        `still open, on the connection it already had. Times are the master's own, from its JSON log; RSS and descriptor counts from /proc (the master's sampled every 20 ms during the reload; ` +
        `"after" is 0.5 s after the reload ended, before the next requests).\n\n` +
        idleTable(h.idle),
    );
  }
  return parts.join('\n\n');
}
