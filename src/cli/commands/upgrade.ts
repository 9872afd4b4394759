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

const usage = `Usage: hitless upgrade [--exec <path>] [--json] [--timeout <dur>] [--config <path>] [--run-dir <dir>]

Replaces the running master by the hitless installed now, with the same configuration
file, flags, environment and working directory: the new master gets every listening
socket (systemd's too), the generation counter, the reload counters and the traffic
totals, and starts a generation on those sockets. Once every new worker is ready it takes
the control socket, the pid file and (with NOTIFY_SOCKET) systemd's MAINPID; the old
workers hand their keep-alive connections over to the new master's workers, drain the
rest, and the old master exits. If the new master or its workers fail (exit, never
ready, too slow), it is stopped and the old master keeps serving: exit code 1 with the
reason. SIGUSR2 to the master does the same (docs/CLI.md, the signals under "hitless start").

Refused (ERR_UPGRADE_REFUSED) where the master's PID must not change: PID 1 of a
container, under a container init or supervisord, in a terminal, or under systemd without
NOTIFY_SOCKET (docs/systemd.md has the unit to use).

Flags:
  --exec <path>      the hitless to run (default: the path the master was started from,
                     resolved again: node_modules/.bin/hitless, /usr/bin/hitless, …)
  --json             print the outcome as JSON (no progress lines)
  --timeout <dur>    stop waiting after this long (the upgrade goes on in the master)
  --config <path>    config file of the app (default: ./hitless.json if it exists)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

/** One phrase per phase of the upgrade, from the old master's events. */
function phrase(e: MasterEvent): string | undefined {
  if (e.type === 'upgrade-phase') {
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
  if (e.type === 'reload-drained') return `old workers gone (${e.handedOver ?? 0} connections handed over, ${e.drained ?? 0} drained)`;
  return undefined;
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
    const onEvent = values.json ? undefined : (e: MasterEvent): void => {
      const text = phrase(e);
      if (text) process.stdout.write(`upgrade: ${text}\n`);
    };
    // --exec is resolved by the master, in its own working directory: make a relative one ours.
    const exec = values.exec === undefined ? undefined : new URL(values.exec, `file://${process.cwd()}/`).pathname;
    const outcome = (await controlRequest(runDir, 'upgrade', { ...(exec ? { exec } : {}) }, { onEvent, timeoutMs })) as UpgradeOutcome;
    // The old master exits right after answering: a deploy script may count on it being gone.
    if (outcome.ok && !(await waitForExit(outcome.from.pid, timeoutMs))) {
      throw new HitlessError('ERR_CONTROL_TIMEOUT', `the old master (pid ${outcome.from.pid}) is still there after ${values.timeout}`);
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
      return outcome.ok ? 0 : 1;
    }
    if (outcome.ok) {
      const c = outcome.connections;
      const moved = c ? `; ${c.handedOver} connection${c.handedOver === 1 ? '' : 's'} handed over, ${c.drained} drained${c.returned + c.lost ? `, ${c.returned} returned, ${c.lost} lost` : ''}` : '';
      const forced = outcome.forced ? `, ${outcome.forced} old worker${outcome.forced === 1 ? '' : 's'} killed at drainTimeout` : '';
      process.stdout.write(`upgrade: done in ${formatDuration(outcome.durationMs)}: master pid ${outcome.pid} (hitless ${outcome.version}) serves generation ${outcome.generation}${moved}${forced}; old master pid ${outcome.from.pid} exited\n`);
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
