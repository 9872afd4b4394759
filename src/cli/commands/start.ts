/**
 * `hitless start`: load the configuration (hitless.json, flags over it) and run the
 * master in this process until it is stopped.
 *
 * The configuration is validated in a short-lived child (`hitless start --print-config`,
 * same arguments, same environment) and handed back as JSON: the schema validator (zod)
 * costs about 13 MB of resident memory once loaded, and the master lives for months, so
 * it never loads it. The child prints the one-line error itself on a bad config.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import type { ConfigFlags } from '../../config/load.js';
import type { MasterConfig } from '../../config/types.js';
import { parseFlags } from '../flags.js';
import { readConfigFile } from '../../config/file.js';
import { configFileOf } from '../../config/load.js';
import { bareDurationWarnings } from '../../config/bare-durations.js';
import { lowLimitWarning } from '../../ops/fd-limit.js';
import { createLogger } from '../../core/logger.js';
import { fingerprintConfig } from '../../master/reread.js';
import { HitlessError } from '../../errors.js';
import { runDetached, withoutDetachFlags } from '../detach.js';

const usage = `Usage: hitless start [flags] [-- command args...]

Runs the master: binds the listening sockets, starts the workers and serves reloads until
SIGTERM/SIGINT or \`hitless stop\`. In the foreground by default; with --detach in the
background, returning once the first generation serves. Reads ./hitless.json when present;
flags override its keys (docs/CONFIG.md).

Flags:
  --config <path>          config file (default: ./hitless.json if it exists)
  --no-config              read no config file, not even ./hitless.json (what \`hitless
                           upgrade\` gives the new master of a master started without one)
  --listen [name=]address  listening socket, repeatable: 8080, 127.0.0.1:8080, [::1]:8080,
                           unix:/path/app.sock?mode=0660 (replaces the file's list)
  --workers <n|auto>       workers per generation (default 1; auto = one per CPU)
  --ready-timeout <dur>    time new workers have to announce READY=1 (default 30s)
  --drain-timeout <dur>    time old workers have to drain before SIGKILL (default 30s)
  --stay-ready <dur>       time every new worker must stay ready before a reload is done
                           or --detach returns; one exiting sooner fails it (default 1s;
                           0 = no wait)
  --ready-after <dur>      declare workers ready after this long alive, for programs
                           that cannot announce readiness (default: wait for READY=1)
  --stop-signal <sig>      signal that asks a worker to drain (default SIGTERM)
  --env KEY=VALUE          extra worker environment, repeatable
  --cwd <dir>              worker working directory (default: the app folder)
  --strategy <all|rolling|canary>
                           reload all workers at once (default), one at a time, or
                           after a canary judged on its traffic (docs/canary.md)
  --no-handover            on reload, close keep-alive connections (drain) instead of
                           handing them to the new generation
  --handover-spread <duration>
                           pace a reload's hand-over for up to this long, so moving
                           connections crowds the serving workers less (default 5s;
                           0 = full speed)
  --boot-nice <n>          workers starting while others serve run n nice levels lower
                           until READY, where the master may restore them (default 10; 0 = off)
  --boot-concurrency <n|auto>
                           at most n workers boot at once while others serve; the next
                           starts when one is READY (default auto: half the CPUs, at least 1)
  --no-compile-cache       do not give workers Node's compile cache (NODE_COMPILE_CACHE)
  --warmup <path>          request this path from each new worker before a reload
                           switches to it (a 5xx fails the reload), repeatable
  --warmup-rounds <n>      request the warmup paths n times (default 1)
  --run-dir <dir>          folder of the control socket (default: derived from the app folder)
  --pid-file <path>        write the master's pid here
  --log-format <text|json> master log lines (default text)
  --no-preload             start Node workers without the preload that lets an app's own
                           listen(port) adopt the socket the master holds (docs/frameworks.md)
  -d, --detach             run in the background (a new session, no terminal); return once
                           the first generation serves. Output goes to ./hitless.log
                           (hitless logs -f); not rotated: for services use hitless startup
  --log-file <path>        with --detach: append the output here instead
  --print-config           print the effective configuration as JSON and exit
  -h, --help               show this help

Durations are milliseconds or strings like 500ms, 2s, 1.5m.

Examples:
  hitless start --listen 127.0.0.1:3000 --workers 2 -- node server.js
  hitless start --detach --listen 127.0.0.1:3000 --workers 2 -- node server.js`;

const options = {
  config: { type: 'string' },
  'no-config': { type: 'boolean' },
  listen: { type: 'string', multiple: true },
  workers: { type: 'string' },
  'ready-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'stay-ready': { type: 'string' },
  'ready-after': { type: 'string' },
  'stop-signal': { type: 'string' },
  env: { type: 'string', multiple: true },
  cwd: { type: 'string' },
  strategy: { type: 'string' },
  'no-handover': { type: 'boolean' },
  'handover-spread': { type: 'string' },
  'boot-nice': { type: 'string' },
  'boot-concurrency': { type: 'string' },
  'no-compile-cache': { type: 'boolean' },
  warmup: { type: 'string', multiple: true },
  'warmup-rounds': { type: 'string' },
  'run-dir': { type: 'string' },
  'pid-file': { type: 'string' },
  'log-format': { type: 'string' },
  'no-preload': { type: 'boolean' },
  'print-config': { type: 'boolean' },
  detach: { type: 'boolean', short: 'd' },
  'log-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Splits `argv` at the first `--`: flags before, the worker command after. */
function splitCommand(argv: string[]): { flags: string[]; command: string[] | undefined } {
  const at = argv.indexOf('--');
  return at === -1 ? { flags: argv, command: undefined } : { flags: argv.slice(0, at), command: argv.slice(at + 1) };
}

/**
 * Maps parsed `hitless start` flags onto the config loader's input. `hitless check` and
 * `hitless startup` parse the same command line (`command` names it in errors) with their
 * own flags as `extra` (their values come back as parsed).
 */
export function startFlagsToConfig(
  argv: string[], command = 'start', extra: Record<string, { type: 'boolean' | 'string' }> = {},
): { help: boolean; printConfig: boolean; detach: boolean; logFile: string | undefined; flags: ConfigFlags; extra: Record<string, string | boolean | undefined> } {
  const split = splitCommand(argv);
  const { values: v } = parseFlags(command, split.flags, { ...options, ...extra });
  return {
    help: v.help === true,
    printConfig: v['print-config'] === true,
    detach: v.detach === true,
    logFile: v['log-file'],
    extra: Object.fromEntries(Object.keys(extra).map((k) => [k, (v as Record<string, string | boolean | undefined>)[k]])),
    flags: {
      config: v.config, noConfig: v['no-config'] === true ? true : undefined, command: split.command, listen: v.listen, workers: v.workers,
      readyTimeout: v['ready-timeout'], drainTimeout: v['drain-timeout'], stayReady: v['stay-ready'], readyAfter: v['ready-after'],
      stopSignal: v['stop-signal'], env: v.env, cwd: v.cwd, strategy: v.strategy, runDir: v['run-dir'],
      handover: v['no-handover'] === true ? false : undefined, handoverSpread: v['handover-spread'],
      bootNice: v['boot-nice'], bootConcurrency: v['boot-concurrency'], compileCache: v['no-compile-cache'] === true ? false : undefined, warmup: v.warmup,
      warmupRounds: v['warmup-rounds'],
      pidFile: v['pid-file'], logFormat: v['log-format'], preload: v['no-preload'] === true ? false : undefined,
    },
  };
}

export const command: Command = {
  name: 'start',
  usage,
  async run(argv) {
    const { help, printConfig, detach, logFile, flags } = startFlagsToConfig(argv);
    if (help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    if (printConfig) {
      const { loadConfig } = await import('../../config/load.js');
      process.stdout.write(JSON.stringify(loadConfig({ flags }), null, 2) + '\n');
      return 0;
    }
    // Taken before validating: a reload validates again only if the file changed since (reread.ts).
    const startFingerprint = fingerprintBeforeCheck(flags);
    const loaded = loadConfigInChild(withoutDetachFlags(argv));
    if (typeof loaded === 'number') return loaded;
    if (detach) return runDetached(argv, loaded, logFile);
    if (logFile !== undefined) throw new HitlessError('ERR_USAGE', '--log-file goes with --detach (in the foreground, output goes to this terminal)');
    // Imported only now: `hitless status` and friends never load the master runtime.
    const { runMaster } = await import('../../master/master.js');
    const logger = createLogger({ format: loaded.logFormat });
    // Valid but surely a slip (`--ready-timeout 5` is 5 ms): said before the start fails of it.
    // A detached master logs it too, and `start --detach` shows the log until it is up.
    for (const warning of bareDurationWarnings(fileAsWritten(flags), flags)) logger.warn(warning, { event: 'config-warning' });
    const fdWarning = lowLimitWarning();
    if (fdWarning !== undefined) logger.warn(fdWarning, { event: 'config-warning' });
    // Every reload reads the configuration again from this same command line.
    const result = await runMaster(loaded, logger, { startArgv: argv, startFingerprint });
    // The log says it among the master's lines; the command ends with it, like every failed command.
    if (result.failure) process.stderr.write(`hitless: ${result.failure.message} (${result.failure.code})\n`);
    return result;
  },
};

/** The config file as written (durations not yet turned into ms); {} without one. It was validated already. */
function fileAsWritten(flags: ConfigFlags): Record<string, unknown> {
  try {
    const path = configFileOf(flags, process.cwd());
    return path === undefined ? {} : readConfigFile(path);
  } catch {
    return {};
  }
}

function fingerprintBeforeCheck(flags: ConfigFlags): string | undefined {
  try {
    return fingerprintConfig(configFileOf(flags, process.cwd()), process.cwd());
  } catch {
    return undefined; // the check reports it
  }
}

/** Runs `hitless start --print-config <argv>`; the config, or the child's exit code on error. */
function loadConfigInChild(argv: string[]): MasterConfig | number {
  const cli = fileURLToPath(new URL('../main.js', import.meta.url));
  const result = spawnSync(process.execPath, [cli, 'start', '--print-config', ...argv], {
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (result.status !== 0) return result.status ?? 1;
  return JSON.parse(result.stdout.toString('utf8')) as MasterConfig;
}
