/**
 * `hitless list`: every master on this machine, from anywhere (pm2 list). Masters are
 * found through their control sockets (src/control/discover.ts), so one started with
 * `--run-dir`, by systemd or detached shows up as well as one started in a terminal.
 */
import type { Command } from '../command.js';
import { discoverMasters, sortMasters, type FoundMaster } from '../../control/discover.js';
import { identifyMaster } from '../../control/identify.js';
import { formatDuration } from '../../config/duration.js';
import type { ReloadOutcome, StatusSnapshot } from '../../core/types.js';
import { renderTable } from '../../text/table.js';
import { parseFlags } from '../flags.js';
import { wasRefused } from '../format.js';
import { runs } from '../../core/worker-state.js';

const usage = `Usage: hitless list [--wide] [--json]

Shows every hitless master running on this machine, wherever it was started: its app
folder, pid, state, serving generation, ready workers, listeners, uptime and last reload.
Masters of other users show as "permission denied" unless you are root, with the
pid and app folder their beacon gives ("?" for a folder nothing here points at).

Flags:
  --wide        add each master's run dir (what --run-dir takes)
  --json        print [{ runDir, status }] (status as in \`hitless status --json\`;
                another user's master: [{ runDir, error, pid, appDir }])
  -h, --help    show this help

Then, for one of them: \`hitless status\` in its app folder, or
\`hitless status --run-dir <RUN DIR>\` from anywhere.`;

/** "ok 5 min ago", "failed (ERR_READY_TIMEOUT) 1 h ago", "refused (ERR_CONFIG_INVALID) 3 s ago", "none". */
export function lastReloadCell(o: ReloadOutcome | undefined, now = Date.now()): string {
  if (o === undefined) return 'none';
  const ago = `${formatDuration(Math.max(0, now - o.startedAt - o.durationMs))} ago`;
  if (o.ok) return `ok ${ago}`;
  return `${wasRefused(o) ? 'refused' : 'failed'} (${o.error?.code ?? 'error'}) ${ago}`;
}

/** Ready workers of the serving generation over its live workers, and its slots given up after a crash loop. */
function workersCell(s: StatusSnapshot): string {
  const mine = s.workers.filter((w) => w.generation === s.generation && runs(w));
  const failed = s.workers.filter((w) => w.generation === s.generation && w.state === 'failed').length;
  return `${mine.filter((w) => w.state === 'ready').length}/${mine.length}${failed > 0 ? ` (${failed} failed)` : ''}`;
}

/**
 * The `hitless list` table.
 *
 * @example
 * process.stdout.write(formatList(await discoverMasters()) + '\n');
 */
export function formatList(masters: FoundMaster[], now = Date.now(), wide = false): string {
  if (masters.length === 0) return 'no hitless master runs on this machine (start one with `hitless start`)';
  const header = ['APP', 'PID', 'STATE', 'GEN', 'WORKERS', 'LISTEN', 'UPTIME', 'LAST RELOAD', ...(wide ? ['RUN DIR'] : [])];
  const rows = masters.map((m) => {
    const s = m.status;
    // Another user's master: what its beacon tells (the run dir is --wide's column, not an app folder).
    if (s === undefined) return [m.appDir ?? '?', m.pid === undefined ? '-' : String(m.pid), m.error ?? 'no answer', '-', '-', '-', '-', '-', ...(wide ? [m.runDir] : [])];
    return [
      s.app?.dir ?? '?', String(s.pid), s.state, String(s.generation), workersCell(s),
      s.listeners.map((l) => l.address).join(', ') || '-', formatDuration(s.uptimeMs), lastReloadCell(s.lastReload, now),
      ...(wide ? [m.runDir] : []),
    ];
  });
  return renderTable([header, ...rows]);
}

export const command: Command = {
  name: 'list',
  usage,
  async run(argv) {
    const { values } = parseFlags('list', argv, { json: { type: 'boolean' }, wide: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const masters = sortMasters((await discoverMasters()).map((m) => (m.error === undefined ? m : { ...m, ...identifyMaster(m.runDir) })));
    process.stdout.write(values.json ? JSON.stringify(masters, null, 2) + '\n' : formatList(masters, Date.now(), values.wide === true) + '\n');
    return 0;
  },
};
