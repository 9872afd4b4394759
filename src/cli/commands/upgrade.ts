/**
 * `hitless upgrade`: replace the running master by the hitless installed now, without
 * closing a listening socket or a keep-alive connection, and exit 0 only once the new
 * master serves and the old one is gone (1, with the reason, when the old one serves on).
 */
import type { Command } from '../command.js';
import { controlRequest } from '../../control/client.js';
import { formatDuration } from '../../config/duration.js';
import { findRunDir } from '../../control/find.js';
import type { MasterEvent, UpgradeOutcome } from '../../core/types.js';
import { HitlessError } from '../../errors.js';
import { waitForExit } from '../../process-alive.js';
import { CLIENT_FLAGS, parseFlags, parseTimeoutFlag } from '../flags.js';
import { describeDraining, plural } from '../format.js';
import { dropSeams, explainDrop, isDropped, masterPid } from '../../control/dropped.js';

const usage = `Usage: hitless upgrade [--exec <path>] [--json] [--timeout <dur>] [--config <path>] [--run-dir <dir>]

Replaces the running master by the hitless installed now, with the same configuration
file, flags, environment and working directory: the new master gets every listening
socket (systemd's too), the generation counter, the reload counters and the traffic
totals, and starts a generation on those sockets. Once every new worker is ready it takes
the control socket, the pid file and (with NOTIFY_SOCKET) systemd's MAINPID; the old
workers hand their keep-alive connections over to the new master's workers, drain the
rest, and the old master exits once they are gone, with older generations still draining
in the background (each until its drainTimeout at the latest; named when it begins). If the new master or its workers fail (exit, never
ready, too slow), it is stopped and the old master keeps serving: exit code 1 with the
reason. SIGUSR2 to the master does the same (docs/CLI.md, the signals under "hitless start").
If the old master dies (kill -9, OOM) once the new one runs, the new master takes the
control socket and serves once its first generation is ready: this command says so and
exits 0 (1 when nothing serves).

Refused (ERR_UPGRADE_REFUSED) where the master's PID must not change: PID 1 of a
container, under a container init or supervisord, in a terminal, or under systemd without
NOTIFY_SOCKET (docs/systemd.md has the unit to use).

Flags:
  --exec <path>      the hitless to run (default: the path the master was started from,
                     resolved again: node_modules/.bin/hitless, /usr/bin/hitless, …;
                     with pnpm the app's node_modules/hitless, under Yarn PnP the one
                     Yarn resolves from the app folder: docs/CLI.md)
  --json             print the outcome as JSON (no progress lines)
  --timeout <dur>    stop waiting after this long (the upgrade goes on in the master)
  --config <path>    config file of the app (default: ./hitless.json if it exists)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

/** One phrase per phase of the upgrade, from the old master's events. */
function phasePhrase(e: Extract<MasterEvent, { type: 'upgrade-phase' }>): string | undefined {
  switch (e.phase) {
    case 'spawning': return `starting ${e.exec ?? 'the new master'}`;
    case 'starting': return `new master pid ${e.pid ?? '?'} starting its first generation`;
    case 'ready': return `new master pid ${e.pid ?? '?'} (hitless ${e.version ?? '?'}) ready: generation ${e.generation ?? '?'}`;
    case 'committed': return `new master pid ${e.pid ?? '?'} took the control socket and the pid file`;
    case 'handover': return 'handing keep-alive connections over to the new master, draining the rest';
    case 'failed': return 'the new master failed: stopping it';
    default: return undefined;
  }
}

/** "generation 38" or "generations 34, 35". */
const generationsPhrase = (gs: number[]): string => `generation${gs.length === 1 ? '' : 's'} ${gs.join(', ')}`;

/** ", 2 cut at the drain deadline, 1 worker killed at drainTimeout": what a drain cut ('' for nothing). */
function cutPhrase(cut: number, forced: number): string {
  return `${cut ? `, ${cut} cut at the drain deadline` : ''}${forced ? `, ${plural(forced, 'worker')} killed at drainTimeout` : ''}`;
}

/**
 * "3 drained" (HTTP connections closed gracefully), out of a `drained` count that includes
 * the `closed` WebSockets, which are said apart ({@link closedPhrase}).
 */
const drainedPhrase = (drained: number, closed: number | undefined): string => `${Math.max(0, drained - (closed ?? 0))} drained`;

/**
 * "; 1 WebSocket closed (1001): WebSockets do not move across a master upgrade" ('' for none):
 * the new master's workers never take WebSockets (docs/websockets.md), so the old workers
 * close theirs, which their clients see (h25 F2: they were counted as "drained").
 */
function closedPhrase(closed: number | undefined, why = true): string {
  if (!closed) return '';
  return `; ${plural(closed, 'WebSocket')} closed (1001)${why ? ': WebSockets do not move across a master upgrade, their clients reconnect' : ''}`;
}

/**
 * Follows an upgrade's events, one line per step. At the hand-over it names the old
 * generations still draining in the background, which the old master waits for too (each
 * until its deadline), then says "old workers gone" once, for the workers it handed over, and
 * each background generation as it ends. Before the hand-over no drain is the upgrade's: a
 * background generation's end was said as "old workers gone" then, even before the new master
 * was ready, and again for each one after (h15 F5).
 *
 * @example
 * const progress = new UpgradeProgress();
 * for (const line of progress.update(event)) process.stdout.write(`upgrade: ${line}\n`);
 */
export class UpgradeProgress {
  /** From the hand-over on: the background generations still waited for, with their deadlines. */
  #background: Map<number, number> | undefined;

  update(e: MasterEvent, now = Date.now()): string[] {
    if (e.type === 'upgrade-phase') {
      const text = phasePhrase(e);
      if (e.phase !== 'handover') return text ? [text] : [];
      this.#background = new Map((e.draining ?? []).map((d) => [d.generation, d.deadline]));
      return [text ?? '', ...(e.draining ?? []).map((d) => `also draining ${describeDraining(d, now)}`)];
    }
    if (e.type !== 'reload-drained' || !this.#background) return [];
    if (this.#background.delete(e.generation)) {
      return [`generation ${e.generation} (background) gone after ${formatDuration(e.ms)}: ${drainedPhrase(e.drained ?? 0, e.webSocketsClosed)}${cutPhrase(e.cut ?? 0, e.forced)}${closedPhrase(e.webSocketsClosed, false)}${this.#waiting(now)}`];
    }
    const lost = `${e.returned ? `, ${e.returned} returned` : ''}${e.lost ? `, ${e.lost} lost` : ''}`;
    return [`old workers gone (${plural(e.handedOver ?? 0, 'connection')} handed over, ${drainedPhrase(e.drained ?? 0, e.webSocketsClosed)}${lost}${cutPhrase(e.cut ?? 0, e.forced)})${closedPhrase(e.webSocketsClosed)}${this.#waiting(now)}`];
  }

  /** "; still waiting for generation 38 (background), SIGKILL in 20 s at the latest", or '' once none is left. */
  #waiting(now: number): string {
    const left = [...this.#background ?? []].sort(([a], [b]) => a - b);
    if (left.length === 0) return '';
    const deadline = Math.max(...left.map(([, d]) => d));
    const when = deadline > now ? `SIGKILL in ${formatDuration(deadline - now)} at the latest` : 'SIGKILL due';
    return `; still waiting for ${generationsPhrase(left.map(([g]) => g))} (background), ${when}`;
  }
}

/**
 * The line of an upgrade that went through: what serves, what became of the old workers'
 * connections, and the background generations it waited for with what they cut.
 *
 * @example
 * upgradeDoneLine(outcome); // 'upgrade: done in 40.1 s: master pid 11327 (hitless 0.3.0) serves generation 40; 2 connections handed over, …; old master pid 9267 exited'
 * // With `notRun` (the same copy ran again while the app has another version): two lines, the first 'upgrade: restarted the same hitless 0.1.0 in 2.5 s: …'
 */
export function upgradeDoneLine(outcome: UpgradeOutcome): string {
  const c = outcome.connections;
  const lost = c && c.returned + c.lost ? `, ${c.returned} returned, ${c.lost} lost` : '';
  const moved = c ? `; ${plural(c.handedOver, 'connection')} handed over, ${drainedPhrase(c.drained, c.webSocketsClosed)}${lost}${cutPhrase(c.cut, 0)}` : '';
  const forced = outcome.forced ? `, ${plural(outcome.forced, 'old worker')} killed at drainTimeout` : '';
  const b = outcome.background;
  const waited = b ? `; waited for ${generationsPhrase(b.generations)} draining in the background: ${drainedPhrase(b.drained, b.webSocketsClosed)}${cutPhrase(b.cut, b.forced)}` : '';
  // A SIGHUP passed on to the new master reloaded it after the takeover: its first generation may be gone (h18 N4).
  const serves = outcome.reloadsPassedOn
    ? `took over with generation ${outcome.generation}, then reloaded for a SIGHUP the old master passed on (\`hitless status\` shows the generation serving now)`
    : `serves generation ${outcome.generation}`;
  // After an upgrade onto another Node (a launcher given to --exec) the line says so (h23 F4).
  const from = outcome.from.node;
  const node = outcome.node && from && outcome.node !== from ? `, node ${outcome.node}, was ${from}` : '';
  const rest = `master pid ${outcome.pid} (hitless ${outcome.version}${node}) ${serves}${moved}${forced}${waited}${closedPhrase(c?.webSocketsClosed)}; old master pid ${outcome.from.pid} exited`;
  const n = outcome.notRun;
  if (!n) return `upgrade: done in ${formatDuration(outcome.durationMs)}: ${rest}`;
  // The master was replaced, but by the copy it ran already, while the app has another (h23 F3).
  return `upgrade: restarted the same hitless ${outcome.version} in ${formatDuration(outcome.durationMs)}: ${rest}\n` +
    `upgrade: not upgraded to the hitless ${n.version} this app has installed: the master was started from another copy, which it ran again; to run ${n.version}: hitless upgrade --exec ${n.exec}`;
}

export const command: Command = {
  name: 'upgrade',
  usage,
  async run(argv) {
    const { values } = parseFlags('upgrade', argv, {
      ...CLIENT_FLAGS, exec: { type: 'string' }, json: { type: 'boolean' }, timeout: { type: 'string' },
    });
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const timeoutMs = parseTimeoutFlag(values.timeout);
    const runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
    const progress = new UpgradeProgress();
    // What a master that dies under the upgrade leaves to find out (control/dropped.ts): its pid, asked first, and the new master's.
    const pid = await masterPid(runDir, timeoutMs);
    const seen: { newPid?: number; committed?: boolean } = {};
    const onEvent = (e: MasterEvent): void => {
      if (e.type === 'upgrade-phase' && e.pid !== undefined && (e.phase === 'starting' || e.phase === 'committed')) {
        seen.newPid = e.pid;
        if (e.phase === 'committed') seen.committed = true;
      }
      if (!values.json) for (const line of progress.update(e)) process.stdout.write(`upgrade: ${line}\n`);
    };
    // --exec is resolved by the master, in its own working directory: make a relative one ours.
    const exec = values.exec === undefined ? undefined : new URL(values.exec, `file://${process.cwd()}/`).pathname;
    let outcome: UpgradeOutcome;
    try {
      outcome = (await controlRequest(runDir, 'upgrade', { ...(exec ? { exec } : {}) }, { onEvent, timeoutMs })) as UpgradeOutcome;
    } catch (err) {
      if (!isDropped(err)) throw err;
      const verdict = await explainDrop({ cmd: 'upgrade', pid, ...seen, timeoutMs }, dropSeams(runDir));
      if ('error' in verdict) throw verdict.error;
      // The new master serves: what the upgrade was for, though the old workers' connections were not handed over.
      const s = verdict.served;
      if (values.json) {
        process.stdout.write(JSON.stringify({ ok: true, oldMasterDied: true, pid: s.pid, version: s.version, generation: s.generation, from: { pid: pid ?? s.upgradedFrom?.pid } }, null, 2) + '\n');
      } else {
        process.stdout.write(`upgrade: ${verdict.line}\n`);
      }
      return 0;
    }
    // The old master exits right after answering: a deploy script may count on it being gone.
    if (outcome.ok && !(await waitForExit(outcome.from.pid, timeoutMs))) {
      throw new HitlessError('ERR_CONTROL_TIMEOUT', `the old master (pid ${outcome.from.pid}) is still there after ${values.timeout}`);
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
      return outcome.ok ? 0 : 1;
    }
    if (outcome.ok) {
      process.stdout.write(`${upgradeDoneLine(outcome)}\n`);
      return 0;
    }
    const err = outcome.error;
    process.stderr.write(`${upgradeFailureLine(outcome)}\n`);
    if (err?.output.length) {
      process.stderr.write('last output of the new master:\n');
      for (const line of err.output) process.stderr.write(`  | ${line}\n`);
    }
    return 1;
  },
};

/**
 * The one line of an upgrade that did not happen. The master's refusals start "no
 * upgrade: " (its log line needs it); here "refused" says it already.
 *
 * @example
 * upgradeFailureLine(outcome); // 'hitless: upgrade refused: a reload is under way; … (ERR_UPGRADE_BUSY); master pid 7 (hitless 0.1.0) keeps serving generation 3'
 */
export function upgradeFailureLine(outcome: UpgradeOutcome): string {
  const err = outcome.error;
  const refused = err?.code === 'ERR_UPGRADE_REFUSED' || err?.code === 'ERR_UPGRADE_BUSY';
  const why = err ? `${err.message.replace(/^no upgrade: /, '')} (${err.code})` : outcome.reason;
  return `hitless: upgrade ${refused ? 'refused' : 'failed'}: ${why}; master pid ${outcome.pid} (hitless ${outcome.version}) keeps serving generation ${outcome.generation}`;
}
