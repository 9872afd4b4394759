/**
 * `hitless check`: validate the configuration the way `hitless start` would, without
 * touching any master (nginx -t). Takes the same arguments as `start`, so
 * `hitless check --config prod.json` and `hitless check <start flags…> -- cmd` both work.
 *
 * The running master uses it too: before every reload it runs `hitless check --json` with
 * its own `hitless start` arguments and reloads with the configuration printed back, so the
 * schema validator never loads into the long-lived master (src/master/reconfigure.ts).
 */
import type { Command } from '../command.js';
import { isHitlessError } from '../../errors.js';
import { describeListener } from '../../config/changes.js';
import { formatDuration } from '../../config/duration.js';
import type { MasterConfig } from '../../config/types.js';
import { startFlagsToConfig } from './start.js';

const usage = `Usage: hitless check [--config <path>] [--json] [start flags...] [-- command args...]

Validates hitless.json (or --config) with the flags over it, exactly as \`hitless start\`
would, and touches no running master. Exit 0 with a short summary when it is valid, exit 2
with the key-level message when it is not. Takes every \`hitless start\` flag.

Flags:
  --config <path>    config file (default: ./hitless.json if it exists)
  --json             print {"ok":true,"config":{…}} or {"ok":false,"error":{code,message}}
  -h, --help         show this help

Example:
  hitless check --config /srv/app/hitless.json && systemctl reload app`;

/** The few lines `hitless check` prints about a valid configuration. */
export function summarise(c: MasterConfig): string {
  const rows: [string, string][] = [
    ['command', c.command.join(' ')],
    ['listen', c.listen.map((l) => `${l.name} ${describeListener(l)}`).join(', ') || 'none (sockets from systemd)'],
    ['workers', `${c.workers}, strategy ${c.strategy}, readyTimeout ${formatDuration(c.readyTimeout)}, drainTimeout ${formatDuration(c.drainTimeout)}`],
  ];
  const env = Object.keys(c.env);
  if (env.length) rows.push(['env', env.join(', ')]);
  if (c.user !== undefined || c.group !== undefined) rows.push(['runs as', `user ${c.user ?? '(master\'s)'}, group ${c.group ?? '(user\'s)'}`]);
  if (c.logs.mode === 'file') rows.push(['logs', c.logs.dir]);
  if (c.watch) rows.push(['watch', c.watch.paths.join(', ')]);
  if (c.fetch) rows.push(['fetch', `every ${formatDuration(c.fetch.interval)}`]);
  if (c.metrics) rows.push(['metrics', c.metrics.listen]);
  rows.push(['app folder', c.appDir], ['run dir', c.runDir]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const head = `${c.configPath ?? 'the configuration (flags only, no config file)'} is valid`;
  return [head, ...rows.map(([k, v]) => `  ${k.padEnd(width)}${v}`)].join('\n');
}

export const command: Command = {
  name: 'check',
  summary: 'validate hitless.json (and start flags) without touching the master; exit 2 if invalid',
  usage,
  async run(argv) {
    const { help, flags, extra } = startFlagsToConfig(argv, 'check', { json: { type: 'boolean' } });
    if (help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const { loadConfig } = await import('../../config/load.js');
    let config: MasterConfig;
    try {
      config = loadConfig({ flags });
    } catch (err) {
      if (!extra.json || !isHitlessError(err)) throw err;
      const error = { code: err.code, message: err.message, ...(err.details.problems ? { problems: err.details.problems } : {}) };
      process.stdout.write(JSON.stringify({ ok: false, error }) + '\n');
      return 2;
    }
    process.stdout.write(extra.json ? JSON.stringify({ ok: true, config }) + '\n' : summarise(config) + '\n');
    return 0;
  },
};
