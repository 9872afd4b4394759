/**
 * `hitless check`: validate the configuration the way `hitless start` would, without
 * touching any master (nginx -t). Takes the same arguments as `start`, so
 * `hitless check --config prod.json` and `hitless check <start flags…> -- cmd` both work.
 * It validates whatever the user has: a hitless.json, start flags (with or without a
 * file), or a file with only a `deploy` section (the deploying machine's, docs/fleet.md).
 * With neither a file nor flags it says so, and whether a master started with flags runs
 * in this folder.
 *
 * The running master uses it too: before every reload it runs `hitless check --json` with
 * its own `hitless start` arguments and reloads with the configuration printed back, so the
 * schema validator never loads into the long-lived master (src/master/reconfigure.ts).
 */
import { basename } from 'node:path';
import type { Command } from '../command.js';
import { configProblems, HitlessError, isHitlessError } from '../../errors.js';
import { describeListener } from '../../config/changes.js';
import { formatDuration } from '../../config/duration.js';
import { DEFAULT_STAY_READY_MS } from '../../config/defaults.js';
import { safeUrl } from '../../text/url.js';
import { readConfigFile } from '../../config/file.js';
import { checkRunDir } from '../../config/rundir.js';
import { commandWarnings } from '../../config/command-check.js';
import { bareDurationWarnings } from '../../config/bare-durations.js';
import { prepareFolder, prepareOutputFile } from '../../config/output-file.js';
import { LOG_FILE_NAME } from '../../ops/logfiles.js';
import { resolveWorkdir } from '../../core/workdir.js';
import { findRunDir } from '../../control/find.js';
import { configFileOf, type ConfigFlags } from '../../config/load.js';
import type { MasterConfig } from '../../config/types.js';
import type { FleetConfig } from '../../fleet/types.js';
import type { StatusSnapshot } from '../../core/types.js';
import { controlRequest } from '../../control/client.js';
import { startFlagsToConfig } from './start.js';
import { existsSync } from 'node:fs';

/** How long `hitless check` waits for a master's status when it looks for one. */
const PROBE_TIMEOUT_MS = 2000;

const usage = `Usage: hitless check [--config <path>] [--json] [start flags...] [-- command args...]

Validates hitless.json (or --config) with the flags over it, exactly as \`hitless start\`
would, and touches no running master. Exit 0 with a short summary when it is valid, exit 2
with the key-level message when it is not. Takes every \`hitless start\` flag, so a
master started with flags only is checked with the same flags. A file with only a
"deploy" section (the machine that runs \`hitless deploy\`) is checked as such.

Flags:
  --config <path>    config file (default: ./hitless.json if it exists)
  --json             print {"ok":true,"config":{…}} or {"ok":false,"error":{code,message,problems}}
  -h, --help         show this help

Examples:
  hitless check
  hitless check --listen 127.0.0.1:8080 --workers 2 -- node server.js
  hitless check --config /srv/app/hitless.json && systemctl reload app`;
/**
 * The few lines `hitless check` prints about a valid configuration (and its deploy
 * section, when the file has one).
 */
export function summarise(c: MasterConfig, deploy?: FleetConfig, warnings: string[] = []): string {
  const rows: [string, string][] = [
    ['command', c.command.join(' ')],
    ['listen', c.listen.map((l) => `${l.name} ${describeListener(l)}`).join(', ') || 'none (sockets from systemd)'],
    ['workers', `${c.workers}, strategy ${c.strategy}, readyTimeout ${formatDuration(c.readyTimeout)}, drainTimeout ${formatDuration(c.drainTimeout)}, stayReady ${formatDuration(c.stayReady ?? DEFAULT_STAY_READY_MS)}`],
  ];
  const env = Object.keys(c.env);
  if (env.length) rows.push(['env', env.join(', ')]);
  if (c.user !== undefined || c.group !== undefined) rows.push(['runs as', `user ${c.user ?? '(master\'s)'}, group ${c.group ?? '(user\'s)'}`]);
  if (c.logs.mode === 'file') rows.push(['logs', c.logs.dir]);
  if (c.watch) rows.push(['watch', c.watch.paths.join(', ')]);
  // The URL as the fetcher logs it: no user:password, no query string (a presigned URL's signature).
  if (c.fetch) rows.push(['fetch', `${safeUrl(c.fetch.url)} every ${formatDuration(c.fetch.interval)}`]);
  if (c.metrics) rows.push(['metrics', c.metrics.listen]);
  rows.push(['app folder', c.appDir], ['run dir', c.runDir]);
  // Valid, but a start or reload would fail now (it may be created later, by a release).
  if (!existsSync(c.cwd)) rows.push(['warning', `the workers' folder ${c.cwd} does not exist yet: a start or reload fails until it does`]);
  // The master judges latency from min(warmup, duration / 2): say so rather than show a warm-up it will not wait.
  if (c.canary.warmup > c.canary.duration / 2) {
    rows.push(['warning', `canary.warmup ${formatDuration(c.canary.warmup)} is more than half of canary.duration ${formatDuration(c.canary.duration)}: a canary reload judges latency from ${formatDuration(c.canary.duration / 2)} on`]);
  }
  for (const warning of warnings) rows.push(['warning', warning]);
  const over = c.flagOverrides ?? [];
  if (over.length) rows.push(['flags over', over.map((o) => `${o.flag} (the file says ${o.key.startsWith('env.') ? `another ${o.key}` : `${o.key} ${JSON.stringify(o.file)}`}${o.invalid === undefined ? '' : ', invalid'})`).join(', ')]);
  if (deploy) rows.push(...summariseDeploy(deploy).map(([k, v]): [string, string] => [`deploy ${k}`, v]));
  return table(`${c.configPath ?? 'the configuration (flags only, no config file)'} is valid`, rows);
}

/** True when the command line sets anything beyond --config/--json (a start flag, or a command after --). */
function hasStartFlags(flags: ConfigFlags): boolean {
  return Object.entries(flags).some(([key, value]) => key !== 'config' && value !== undefined && !(Array.isArray(value) && value.length === 0));
}

/** A hitless.json for the deploying machine only: a `deploy` section, no worker command. */
function isDeployOnly(file: Record<string, unknown>, flags: ConfigFlags): boolean {
  return file.deploy !== undefined && file.command === undefined && !hasStartFlags(flags);
}

/** The lines about a valid `deploy` section. */
export function summariseDeploy(f: FleetConfig): [string, string][] {
  const apps = [...new Set(f.hosts.map((h) => h.appDir))];
  const rows: [string, string][] = [
    ['hosts', `${f.hosts.map((h) => h.name).join(', ')} (${f.hosts[0]?.name ?? '-'} first, alone; then ${f.batch} at a time)`],
    ['app folder', `${apps.join(', ')} on the hosts`],
    ['health', healthRow(f)],
  ];
  return rows;
}

/** Each host's health URL (one when they are the same), and how long it must answer 2xx. */
function healthRow(f: FleetConfig): string {
  const urls = [...new Set(f.hosts.map((h) => h.health))];
  if (urls.length === 1 && urls[0] === undefined) return 'none (each host\'s `hitless release` outcome only)';
  const each = urls.length === 1 ? String(urls[0]) : f.hosts.map((h) => `${h.name} ${h.health ?? 'none'}`).join(', ');
  return `${each}, 2xx for ${formatDuration(f.settleMs)}`;
}

function table(head: string, rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return [head, ...rows.map(([k, v]) => `  ${k.padEnd(width)}${v}`)].join('\n');
}

/** The master answering for `cwd`'s default run dir, if any (it was started here). */
async function masterHere(): Promise<StatusSnapshot | undefined> {
  try {
    return (await controlRequest(await findRunDir({}), 'status', {}, { timeoutMs: PROBE_TIMEOUT_MS })) as StatusSnapshot;
  } catch {
    return undefined;
  }
}

/** How to check start flags, as the messages about nothing to check show it. */
const FLAGS_EXAMPLE = '`hitless check --listen 127.0.0.1:8080 -- node server.js`';

/** What `hitless check` says with neither a config file nor flags. */
async function nothingToCheck(): Promise<number> {
  const cwd = process.cwd();
  const master = await masterHere();
  if (master) {
    process.stdout.write(
      `no hitless.json in ${cwd}: the master running here (pid ${master.pid}, generation ${master.generation}) was started with flags only, ` +
      'and every reload keeps those same flags, so there is nothing to validate.\n' +
      `To check other settings before restarting with them, pass them as you would to hitless start: ${FLAGS_EXAMPLE}\n`);
    return 0;
  }
  throw nothingHere(cwd);
}

/**
 * The configuration as `hitless start` would load it, with one difference: no `listen` at
 * all is valid with a warning, since a master started by systemd socket activation gets
 * its sockets from LISTEN_FDS (systemd.md), which `check` run by hand does not have.
 */
function loadForCheck(load: (o: { flags: ConfigFlags; env?: NodeJS.ProcessEnv }) => MasterConfig, flags: ConfigFlags): { config: MasterConfig; warnings: string[] } {
  try {
    return { config: load({ flags }), warnings: [] };
  } catch (err) {
    if (!isHitlessError(err, 'ERR_CONFIG_INVALID') || err.details.noListen !== true) throw err;
    return {
      config: load({ flags, env: { ...process.env, LISTEN_FDS: '1' } }),
      warnings: ['no listen address: only a master started by systemd socket activation (LISTEN_FDS) can run this; `hitless start` by hand refuses it'],
    };
  }
}

const nothingHere = (cwd: string): HitlessError => new HitlessError('ERR_CONFIG_NOT_FOUND',
  `nothing to check in ${cwd}: no hitless.json here and no start flags given. Check a file with --config <path>, or the flags you start with: ${FLAGS_EXAMPLE}`);

export const command: Command = {
  name: 'check',
  usage,
  async run(argv) {
    const { help, flags, extra } = startFlagsToConfig(argv, 'check', { json: { type: 'boolean' } });
    if (help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    try {
      const configPath = configFileOf(flags, process.cwd());
      if (configPath === undefined && !hasStartFlags(flags)) {
        // For scripts (and the master's own re-read, which always has a file or flags), no
        // file and no flags is an error: nothing was validated.
        if (extra.json === true) throw nothingHere(process.cwd());
        return await nothingToCheck();
      }
      const file = configPath === undefined ? {} : readConfigFile(configPath);
      if (isDeployOnly(file, flags)) return await checkDeployOnly(configPath!, flags, extra.json === true);
      const { loadConfig } = await import('../../config/load.js');
      const { config, warnings } = loadForCheck(loadConfig, flags);
      // Valid only because a flag hides the file's value: a start without the flag would fail.
      for (const o of config.flagOverrides ?? []) {
        if (o.invalid !== undefined) warnings.push(`${o.key}: the file's value is invalid and only the flag ${o.flag} hides it; a master started without ${o.flag} would refuse it (${o.invalid}); fix the file`);
      }
      // What `hitless start` refuses about the run dir, without creating it.
      const runDirWarning = checkRunDir(config.runDir);
      if (runDirWarning !== undefined) warnings.push(runDirWarning);
      // What `hitless start` (and a reload that reads it) refuses about the log folder, creating nothing.
      // And about the pid file.
      try {
        if (config.logs.mode === 'file') prepareFolder(config.logs.dir, LOG_FILE_NAME, 'logs.dir', false);
        if (config.pidFile !== undefined) prepareOutputFile(config.pidFile, 'pidFile (--pid-file)', false);
      } catch (err) {
        throw new HitlessError('ERR_CONFIG_INVALID', (err as Error).message);
      }
      warnings.push(...bareDurationWarnings(file, flags));
      // What `hitless start` would find about the command (a typo'd program, a missing entry file).
      // In the folder the workers run in: the release `current` points to, when there is one.
      warnings.push(...commandWarnings({ ...config, cwd: resolveWorkdir(config).cwd }, process.env.PATH));
      const deploy = file.deploy === undefined ? undefined : (await import('../../fleet/config.js')).loadFleetConfig(flags.config, process.cwd());
      if (extra.json === true) process.stdout.write(JSON.stringify({ ok: true, config, ...(warnings.length ? { warnings } : {}) }) + '\n');
      else process.stdout.write(summarise(config, deploy, warnings) + '\n');
      return 0;
    } catch (err) {
      if (extra.json !== true || !isHitlessError(err)) throw err;
      const problems = configProblems(err) ?? err.details.problems;
      const error = { code: err.code, message: err.message, ...(problems ? { problems } : {}) };
      process.stdout.write(JSON.stringify({ ok: false, error }) + '\n');
      return 2;
    }
  },
};

/**
 * A file with only `deploy`: the whole file against the schema (unknown or mistyped keys
 * anywhere), then the deploy section's own rules (hosts, app folder, health URL).
 */
async function checkDeployOnly(configPath: string, flags: ConfigFlags, json: boolean): Promise<number> {
  const { configSchema } = await import('../../config/schema.js');
  const { configErrorFromZod } = await import('../../config/errors.js');
  const file = readConfigFile(configPath);
  const parsed = configSchema.safeParse(file);
  if (!parsed.success) throw configErrorFromZod(parsed.error, file, { file: flags.config ?? basename(configPath), flags: {} });
  const deploy = (await import('../../fleet/config.js')).loadFleetConfig(flags.config, process.cwd());
  if (json) {
    process.stdout.write(JSON.stringify({ ok: true, deploy }) + '\n');
    return 0;
  }
  const head = `${configPath} is valid for \`hitless deploy\` (a deploy section and no master settings: this machine deploys, it runs no master)`;
  process.stdout.write(table(head, summariseDeploy(deploy)) + '\n');
  return 0;
}
