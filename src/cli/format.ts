/**
 * What the client commands print: the status report and the reload progress lines.
 * Pure functions of the master's data (plus a clock), so tests check them directly.
 */
import { describeChange } from '../config/changes.js';
import { formatDuration } from '../config/duration.js';
import type { ConnectionCounts, DrainingGeneration, ListenerStatus, MasterEvent, ReloadOutcome, StatusSnapshot, WorkerStatus } from '../core/types.js';
import { lendPhrase, queuedPhrase } from '../core/logger.js';
import { renderTable } from '../text/table.js';
import { canaryProgress, generationTraffic, trafficCells } from './traffic.js';
import { wasRefused } from '../core/outcomes.js';
import { DEFAULT_STAY_READY_MS } from '../config/defaults.js';
import { runs } from '../core/worker-state.js';

/** Shared with the release code (core/outcomes.ts); the commands import it from here. */
export { wasRefused };

function bytes(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024 * 1024) return `${Math.round(n / 1024)}K`;
  return `${(n / 1024 / 1024).toFixed(n < 100 * 1024 * 1024 ? 1 : 0)}M`;
}

/** One line about a reload outcome: "ok: generation 8 live in 1.2 s …", "refused: …" or "failed: …". */
export function describeOutcome(o: ReloadOutcome, now = Date.now()): string {
  const ago = now >= o.startedAt ? `, ${formatDuration(now - o.startedAt)} ago` : '';
  const canary = o.canary && o.canary.verdict !== 'pending' ? `, canary ${o.canary.verdict === 'pass' ? 'passed' : o.canary.verdict}` : '';
  if (o.ok) {
    return `ok: generation ${o.generation} live in ${formatDuration(o.durationMs)}${canary}${connectionsPhrase(o.connections)}${o.forced ? `, ${o.forced} forced` : ''}${stillPhrase(o)} (${o.reason}${ago})`;
  }
  if (wasRefused(o)) return `refused: ${o.error?.message ?? o.reason} (${o.error?.code ?? 'error'}); generation ${o.generation} kept serving (${o.reason}${ago})`;
  const r = o.rollback;
  const after = r?.error?.code === 'ERR_STOPPING' ? 'the master stopped during the rollback'
    : r?.ok === true ? `rolled back: generation ${r.generation} serves generation ${r.version}'s version`
    : r ? `the rollback to generation ${r.version}'s version failed too${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}: generation ${o.generation} serves`
    : `generation ${o.generation} kept serving`;
  return `failed: generation ${o.attempted} did not go live (${o.error?.code ?? 'error'}: ${o.error?.message ?? o.reason}); ${after}${ago}`;
}

/** "1 worker", "2 workers". */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** ", 12 connections handed over, 1 drained in place, 2 WebSockets moved": what retired workers' connections became ('' for none moved). */
export function connectionsPhrase(c: ConnectionCounts | undefined): string {
  if (!c) return '';
  const moved = c.handedOver + c.returned + c.lost > 0
    ? `, ${plural(c.handedOver, 'connection')} handed over${c.returned ? `, ${c.returned} drained in place` : ''}${c.lost ? `, ${c.lost} lost` : ''}`
    : '';
  return `${moved}${c.webSockets ? `, ${plural(c.webSockets, 'WebSocket')} moved` : ''}`;
}

/** ", 2 old workers still draining 812 upgraded connections in the background": what a reload left draining. */
export function stillPhrase(o: ReloadOutcome): string {
  const s = o.stillDraining;
  if (!s) return '';
  return `, ${plural(s.workers, 'old worker')} still draining${s.upgraded ? ` ${plural(s.upgraded, 'upgraded connection')}` : ''} in the background`;
}

/**
 * What draining workers still hold: "812 upgraded connections", "2 requests in flight",
 * "3 connections open" (reporting, none in flight), "1 not saying what it holds" (no library
 * or preload), joined with commas; '' for nothing.
 */
export function heldPhrase(h: { upgraded: number; requests?: number | undefined; connections?: number | undefined; unknown?: number | undefined }): string {
  const parts: string[] = [];
  if (h.upgraded) parts.push(plural(h.upgraded, 'upgraded connection'));
  if (h.requests) parts.push(`${plural(h.requests, 'request')} in flight`);
  else if (h.connections) parts.push(`${plural(h.connections, 'connection')} open`);
  if (h.unknown) parts.push(`${h.unknown} not saying what ${h.unknown === 1 ? 'it holds' : 'they hold'}`);
  return parts.join(', ');
}

/** Why a generation went to the background although it held more than upgraded connections: "drain.reloadWait 6 s reached". */
const reloadWaitPhrase = (ms: number): string => `drain.reloadWait ${formatDuration(ms)} reached`;

/** A moment as the logs write it (ISO, UTC), to the second: "21:22:11 UTC". */
export const clockUtc = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

/** "generation 7 (background): 2 workers, 812 upgraded connections, SIGKILL in 24.6 s". */
export function describeDraining(d: DrainingGeneration, now = Date.now()): string {
  const left = d.deadline > now ? `SIGKILL in ${formatDuration(d.deadline - now)}` : 'SIGKILL due';
  const why = d.reloadWait === undefined ? '' : `, ${reloadWaitPhrase(d.reloadWait)}`;
  const holds = heldPhrase(d) || 'nothing open';
  return `generation ${d.generation}${d.background ? ` (background${why})` : ''}: ${plural(d.workers.length, 'worker')}, ${holds}, ${left}`;
}

/** "SIGHUP ×3, hitless reload": the reasons merged into one queued reload. */
function countedReasons(reasons: string[]): string {
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].map(([r, n]) => (n > 1 ? `${r} ×${n}` : r)).join(', ');
}

function workerRow(w: WorkerStatus, now: number): string[] {
  return [
    `${w.generation}.${w.slot}`,
    w.pid === undefined ? '-' : String(w.pid),
    w.state,
    runs(w) ? formatDuration(now - w.startedAt) : '-',
    String(w.restarts),
    bytes(w.rssBytes),
    w.cpuPercent === undefined ? '-' : `${w.cpuPercent.toFixed(1)}%`,
    ...trafficCells(w.traffic),
    w.state === 'restarting' && w.restartAt !== undefined ? `restarts ${w.restartAt > now ? `in ${formatDuration(w.restartAt - now)}` : 'now'} (crashed)` : w.statusText ?? '',
  ];
}

/**
 * A listener's address for status, with its trailing space: systemd's socket shows where it
 * is bound when the master could read it, else nothing ("fd:3" says no more than "fd 3").
 */
function listenerAddress(l: ListenerStatus): string {
  if (!l.inherited) return `${l.address} `;
  return l.boundTo !== undefined ? `${l.boundTo} ` : l.address.startsWith('fd:') ? '' : `${l.address} `;
}

/**
 * The `hitless status` report.
 *
 * @example
 * process.stdout.write(formatStatus(snapshot) + '\n');
 */
export function formatStatus(s: StatusSnapshot, now = Date.now()): string {
  const lines = [
    `master      pid ${s.pid}, up ${formatDuration(s.uptimeMs)}, ${s.state}${s.reload ? ` (generation ${s.reload.generation}: ${s.reload.phase})` : ''}${s.reloadQueued ? ` (reload queued${s.queuedReload ? ` for ${countedReasons(s.queuedReload.reasons)}` : ''})` : ''}, hitless ${s.version}${s.node ? `, node ${s.node}` : ''}${s.memory ? `, rss ${bytes(s.memory.rssBytes)}` : ''}`,
    `generation  ${s.generation}${s.release ? `, release ${s.release}` : ''}`,
  ];
  if (s.app) lines.splice(1, 0, `app         ${s.app.dir} (${s.app.configPath ?? 'flags only, no config file'})`);
  s.listeners.forEach((l, i) => {
    lines.push(`${i === 0 ? 'listeners' : ''.padEnd(9)}   ${l.name} ${listenerAddress(l)}(fd ${l.fd}${l.inherited ? ', from systemd' : ''})`);
  });
  if (s.listeners.length === 0) lines.push('listeners   none');
  for (const warning of s.warnings ?? []) lines.push(`warning     ${warning}`);
  lines.push(`last reload ${s.lastReload ? describeOutcome(s.lastReload, now) : 'none yet'}`);
  (s.draining ?? []).forEach((d, i) => lines.push(`${i === 0 ? 'draining ' : ''.padEnd(9)}   ${describeDraining(d, now)}`));
  lines.push(...upgradeLines(s, now));
  const r = s.reloadRequests;
  const refused = r?.refused ?? 0;
  if (r && r.queued + r.merged + refused > 0) {
    lines.push(`requests    ${r.started + r.queued + r.merged + refused} reloads asked for: ${r.started} started at once, ${r.queued} queued behind another, ` +
      `${r.merged} merged into a queued one${refused > 0 ? `, ${refused} refused` : ''}`);
  }
  lines.push('');
  const header = ['WORKER', 'PID', 'STATE', 'UPTIME', 'RESTARTS', 'RSS', 'CPU', 'REQ/S', '5XX', 'P50', 'P99', 'STATUS'];
  lines.push(renderTable([header, ...s.workers.map((w) => workerRow(w, now))]));
  const traffic = generationTraffic(s);
  if (traffic) lines.push('', `traffic over the last ${formatDuration(s.traffic?.windowMs ?? 0)}, totals since each generation started:`, traffic);
  return lines.join('\n');
}

/** What `hitless status` says about master upgrades: one under way, where this master came from, the last one that failed. */
function upgradeLines(s: StatusSnapshot, now: number): string[] {
  const lines: string[] = [];
  if (s.upgrade) lines.push(`upgrade     under way (${s.upgrade.reason}): new master${s.upgrade.pid ? ` pid ${s.upgrade.pid}` : ''} ${s.upgrade.phase}, for ${formatDuration(now - s.upgrade.startedAt)}`);
  if (s.upgradedFrom) lines.push(`upgraded    from master pid ${s.upgradedFrom.pid} (hitless ${s.upgradedFrom.version}${s.upgradedFrom.node ? `, node ${s.upgradedFrom.node}` : ''}), ${formatDuration(now - s.upgradedFrom.at)} ago`);
  const last = s.lastUpgrade;
  if (last?.error) lines.push(`last upgrade ${last.error.code === 'ERR_UPGRADE_REFUSED' || last.error.code === 'ERR_UPGRADE_BUSY' ? 'refused' : 'failed'} ${formatDuration(now - last.startedAt - last.durationMs)} ago: ${last.error.message} (${last.error.code})`);
  return lines;
}

/**
 * Follows a reload's events and says where it is, one phrase per phase
 * ("spawning generation 8", "ready 1/2", "draining 2 workers of generation 7").
 *
 * "N connections left" sums what every draining worker last reported (STATUS=draining <n>
 * connections; an exited one counts 0). It is said once every draining worker has
 * reported, and again only when the sum drops below the last one said: workers report at
 * different moments, so partial sums rose (10, then 20) and a repeated sum said nothing new
 * (issue 19). Nothing is said while no draining worker has reported: workers that do not
 * report (no hitless library, or a program that sends only `stats`) were said to have "0
 * connections left" when they exited, whatever they held.
 */
export class ReloadProgress {
  #generation: number | undefined;
  /** Slots of the new generation started, and those ready now (a crashed one is not, until its replacement is). */
  readonly #spawned = new Set<number>();
  readonly #ready = new Set<number>();
  /** The new generation's size (reload-start); 0 from a master that does not say it. */
  #workers = 0;
  #draining: number | undefined;
  /** How many workers of the draining generation are draining now. */
  #drainingWorkers = 0;
  /** The generation taking the draining workers' connections (reload-draining's `to`). */
  #to: number | undefined;
  /** Open connections each draining worker last reported, by slot (0 once it exited). */
  readonly #open = new Map<number, number>();
  /** Slots of the draining generation that reported their open connections in this drain. */
  readonly #reported = new Set<number>();
  /** The last "connections left" said (undefined: none yet for this drain). */
  #saidLeft: number | undefined;
  /** A skipped warm-up was said for the new generation (once: every worker of it says the same). */
  #saidWarmupSkip = false;
  /** The clock a deadline is counted down from (ms since the epoch). */
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Out of how many: the generation's size, so that workers booting one after another
   * (bootConcurrency) read "ready 1/2", not "ready 1/1"; never less than the slots started
   * (a master that does not say the size). A crashed worker's replacement takes its slot:
   * it is no further worker ("4 started, ready 2/4" for a generation of 2, h11 F1).
   */
  #of(): number {
    return Math.max(this.#workers, this.#spawned.size);
  }

  /** The phrase for `event`, or undefined when it does not change the phase. */
  update(event: MasterEvent): string | undefined {
    switch (event.type) {
      case 'reload-queued':
        return `${queuedPhrase(event)} (${event.reason})`;
      case 'reload-config':
        return event.changes.length === 0 ? 'no configuration change'
          : `configuration changes: ${event.changes.map(describeChange).join('; ')}`;
      case 'reload-start':
        // A new reload (a release that switches back reloads twice): nothing of the one before counts.
        this.#generation = event.generation;
        this.#workers = event.workers ?? 0;
        this.#spawned.clear();
        this.#ready.clear();
        this.#draining = undefined;
        this.#to = undefined;
        this.#saidWarmupSkip = false;
        return `spawning generation ${event.generation}`;
      case 'worker-spawn': {
        if (event.generation !== this.#generation) return undefined;
        const again = this.#spawned.has(event.slot);
        this.#spawned.add(event.slot);
        if (again) return `generation ${event.generation}: worker ${event.generation}.${event.slot} started again${event.pid === undefined ? '' : ` (pid ${event.pid})`}, ready ${this.#ready.size}/${this.#of()}`;
        return `spawning generation ${event.generation}: ${this.#spawned.size} started, ready ${this.#ready.size}/${this.#of()}`;
      }
      case 'worker-ready':
        if (event.generation !== this.#generation) return undefined;
        this.#ready.add(event.slot);
        return `generation ${event.generation}: ready ${this.#ready.size}/${this.#of()} (worker ${event.generation}.${event.slot}, pid ${event.pid}, ${formatDuration(event.ms)})`;
      case 'worker-exit':
        if (event.generation === this.#draining && event.planned) return this.#left(event.slot, 0);
        if (event.generation !== this.#generation || event.planned) return undefined;
        this.#ready.delete(event.slot);
        return `worker ${event.generation}.${event.slot} exited (${event.signal ?? `code ${event.code}`})`;
      case 'worker-warmup':
        // Configured but skipped (workers that take no hand-over: another language, --no-preload):
        // said here as well as in the log, or an operator believes the new generation was warmed.
        if (event.generation !== this.#generation || event.skipped === undefined || this.#saidWarmupSkip) return undefined;
        this.#saidWarmupSkip = true;
        return `generation ${event.generation}: warm-up skipped: ${event.skipped}`;
      case 'ready-wait': {
        if (event.generation !== this.#generation) return undefined;
        const who = event.workers.map((w) => `${event.generation}.${w.slot} (pid ${w.pid ?? '?'}${w.status ? `: ${w.status}` : ''})`);
        return `generation ${event.generation}: not ready after ${formatDuration(event.waitingMs)}, waiting for ${who.join(', ')}`;
      }
      case 'reload-ready':
        return `generation ${event.generation} ready in ${formatDuration(event.ms)}`;
      case 'reload-rollback':
        return event.text;
      case 'reload-draining':
        this.#draining = event.generation;
        this.#drainingWorkers = event.workers;
        this.#open.clear();
        this.#reported.clear();
        this.#saidLeft = undefined;
        this.#to = event.to;
        return `draining ${event.workers} worker${event.workers === 1 ? '' : 's'} of generation ${event.generation}`;
      case 'worker-status': {
        const open = /^draining (\d+) connections?$/.exec(event.text);
        if (event.generation !== this.#draining || !open) return undefined;
        this.#reported.add(event.slot);
        return this.#left(event.slot, Number(open[1]));
      }
      case 'reload-phase':
        if (event.generation !== this.#generation) return undefined;
        if (event.phase === 'canary') return `generation ${event.generation}: canary ready, comparing its traffic with the serving generation`;
        // The reload waits up to stayReady here: said, or the reload looks stuck after its drain.
        // The wait the master uses (an older master's event has none: its fixed second).
        if (event.phase === 'settling') return `generation ${event.generation}: waiting until every new worker has been ready for ${formatDuration(event.settleMs ?? DEFAULT_STAY_READY_MS)} (one that exits meanwhile is rolled back)`;
        if (event.phase !== 'handover') return undefined;
        // A rejected canary's connections go back to the generation that keeps serving (issue 18).
        if (this.#to !== undefined && this.#draining !== undefined && this.#to < this.#draining) return `handing connections back to generation ${this.#to}`;
        return `handing keep-alive connections over to generation ${this.#to ?? event.generation}`;
      case 'canary-progress':
        return canaryProgress(event);
      case 'canary-lend':
        return lendPhrase(event);
      case 'canary-verdict': {
        const word = { pass: 'passed', fail: 'failed', inconclusive: 'was inconclusive', pending: 'is running' }[event.verdict];
        return `canary ${word}: ${event.reason}`;
      }
      case 'drain-background': {
        const why = event.reloadWait === undefined ? '' : ` (${reloadWaitPhrase(event.reloadWait)})`;
        const holds = heldPhrase(event);
        const left = event.deadline > this.#now() ? ` (in ${formatDuration(event.deadline - this.#now())})` : '';
        return `generation ${event.generation} drains on in the background${why}: ${plural(event.workers, 'worker')}${holds ? ` holding ${holds}` : ''}, until ${clockUtc(event.deadline)} at most${left}`;
      }
      case 'drain-limit':
        return `generation ${event.generation} stopped at once: more than drain.maxGenerations (${event.maxGenerations}) generations would drain in the background`;
      case 'reload-drained': {
        const how = event.to !== undefined && event.to < event.generation ? `handed back to generation ${event.to}` : 'handed over';
        const moved = `${event.handedOver ? `, ${plural(event.handedOver, 'connection')} ${how}` : ''}${event.webSockets ? `, ${plural(event.webSockets, 'WebSocket')} moved` : ''}`;
        const back = event.returned ? `, ${event.returned} drained in place` : '';
        const lost = `${event.lost ? `, ${event.lost} lost` : ''}${event.cut ? `, ${event.cut} cut at the drain deadline` : ''}`;
        return `generation ${event.generation} drained in ${formatDuration(event.ms)}${moved}${back}${lost}${event.forced ? ` (${event.forced} forced)` : ''}`;
      }
      default:
        return undefined;
    }
  }

  /** Records `slot`'s open connections; the "left" phrase when it is news (see the class comment). */
  #left(slot: number, open: number): string | undefined {
    this.#open.set(slot, open);
    if (this.#open.size < this.#drainingWorkers || this.#reported.size === 0) return undefined;
    const total = [...this.#open.values()].reduce((a, b) => a + b, 0);
    if (this.#saidLeft !== undefined && total >= this.#saidLeft) return undefined;
    this.#saidLeft = total;
    return `draining generation ${this.#draining}: ${total} connection${total === 1 ? '' : 's'} left`;
  }
}
