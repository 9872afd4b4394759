/**
 * The master's configuration: hitless.json, then command-line flags over it, validated
 * once and normalised into a {@link MasterConfig} (defaults applied, durations in ms,
 * listeners parsed, paths absolute). Every problem becomes one HitlessError whose
 * message names the key (or flag), shows the bad value and says what to write instead.
 */
import { availableParallelism } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { configError, configErrorFromZod, configErrorOf, type ValueSources } from './errors.js';
import { HitlessError, isHitlessError } from '../errors.js';
import { checkDistinctAddresses, checkUniqueNames, listenEntryAt, ListenError, parseListen, requireListenAddress } from './listen.js';
import { parseMetricsListen } from './metrics.js';
import { MAX_WORKERS } from './workers.js';
import { configSchema, type ConfigInput } from './schema.js';
import { parseSize } from './size.js';
import {
  DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_STAY_READY_MS, DEFAULT_FETCH, DEFAULT_LOGS, DEFAULT_LOG_FORMAT,
  DEFAULT_PRELOAD, DEFAULT_READY_AFTER_MS, DEFAULT_READY_TIMEOUT_MS, DEFAULT_RELEASE_KEEP, DEFAULT_RESTART,
  DEFAULT_STOP_SIGNAL, DEFAULT_HANDOVER, DEFAULT_STRATEGY, DEFAULT_WATCH_DEBOUNCE_MS, DEFAULT_WORKERS, DEFAULT_CANARY, DEFAULT_DRAIN,
  DEFAULT_BOOT_NICE, DEFAULT_BOOT_CONCURRENCY, DEFAULT_HANDOVER_SPREAD_MS, DEFAULT_COMPILE_CACHE, DEFAULT_WARMUP, DEFAULT_WARMUP_ROUNDS,
} from './defaults.js';
import { resolveRunDir } from './rundir.js';
import { parseDuration } from './duration.js';
import { FLAG_FOR_KEY } from './keys.js';
import type { FlagOverride, ListenerSpec, MasterConfig } from './types.js';

export { resolveRunDir, ensureRunDir, controlSocketPath } from './rundir.js';

/** `hitless start` flags, as parsed by the CLI (strings, as typed). */
export interface ConfigFlags {
  config?: string;
  /** `--no-config`: read no config file, not even ./hitless.json (an upgraded flags-only master). */
  noConfig?: boolean;
  /** Everything after `--`. */
  command?: string[];
  listen?: string[];
  workers?: string;
  readyTimeout?: string;
  drainTimeout?: string;
  /** --stay-ready <duration> */
  stayReady?: string;
  readyAfter?: string;
  stopSignal?: string;
  /** `KEY=VALUE` strings. */
  env?: string[];
  cwd?: string;
  strategy?: string;
  /** --no-handover */
  handover?: boolean;
  /** --handover-spread <duration> */
  handoverSpread?: string;
  /** --boot-nice <n> */
  bootNice?: string;
  /** --boot-concurrency <n|auto> */
  bootConcurrency?: string;
  /** false: `--no-compile-cache`. */
  compileCache?: boolean;
  /** --warmup <path>, repeatable. */
  warmup?: string[];
  /** --warmup-rounds <n> */
  warmupRounds?: string;
  runDir?: string;
  pidFile?: string;
  logFormat?: string;
  /** false: `--no-preload`. */
  preload?: boolean;
}

export interface LoadConfigOptions {
  flags?: ConfigFlags;
  /** Where relative flag paths and the default hitless.json are looked up (default: process.cwd()). */
  cwd?: string;
  /** The master's environment: LISTEN_FDS allows an empty listen list; XDG_RUNTIME_DIR places the run dir. */
  env?: NodeJS.ProcessEnv;
}

import { findConfigFile, readConfigFile } from './file.js';

export { findConfigFile, readConfigFile };

function flagsToInput(flags: ConfigFlags, cwd: string, sources: ValueSources): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const set = (key: string, value: unknown): void => {
    if (value === undefined) return;
    out[key] = value;
    sources.flags[key] = FLAG_FOR_KEY[key] ?? key;
  };
  const number = (v: string | undefined): unknown => (v !== undefined && /^\d+$/.test(v) ? Number(v) : v);
  set('command', flags.command?.length ? flags.command : undefined);
  set('listen', flags.listen?.length ? flags.listen : undefined);
  set('workers', number(flags.workers));
  set('readyTimeout', flags.readyTimeout);
  set('drainTimeout', flags.drainTimeout);
  set('stayReady', flags.stayReady);
  set('readyAfter', flags.readyAfter);
  set('stopSignal', flags.stopSignal);
  set('strategy', flags.strategy);
  set('handover', flags.handover);
  set('handoverSpread', flags.handoverSpread);
  set('bootNice', number(flags.bootNice));
  set('bootConcurrency', number(flags.bootConcurrency));
  set('compileCache', flags.compileCache);
  set('warmup', flags.warmup?.length ? flags.warmup : undefined);
  set('warmupRounds', number(flags.warmupRounds));
  set('logFormat', flags.logFormat);
  set('preload', flags.preload);
  // Paths typed on the command line are relative to where the command runs.
  set('cwd', flags.cwd === undefined ? undefined : resolve(cwd, flags.cwd));
  set('runDir', flags.runDir === undefined ? undefined : resolve(cwd, flags.runDir));
  set('pidFile', flags.pidFile === undefined ? undefined : resolve(cwd, flags.pidFile));
  if (flags.env?.length) {
    const env: Record<string, string> = {};
    for (const pair of flags.env) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw configError(['env'], pair, 'write --env KEY=VALUE', { file: undefined, flags: { env: '--env' } });
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    set('env', env);
  }
  return out;
}

/**
 * Loads hitless.json (or `flags.config`), applies the flags over it and returns the
 * validated configuration. appDir is the config file's folder, else `cwd`.
 *
 * @throws HitlessError ERR_CONFIG_NOT_FOUND, ERR_CONFIG_PARSE or ERR_CONFIG_INVALID.
 * @example
 * const config = loadConfig({ flags: { listen: ['127.0.0.1:8080'], command: ['node', 'server.js'] } });
 * config.listen[0]; // { name: 'http', kind: 'tcp', host: '127.0.0.1', port: 8080, … }
 */
export function loadConfig(options: LoadConfigOptions = {}): MasterConfig {
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const configPath = configFileOf(flags, cwd);
  const sources: ValueSources = { file: configPath && (flags.config ?? basename(configPath)), flags: {} };
  const fileInput = configPath ? readConfigFile(configPath) : {};
  const flagInput = flagsToInput(flags, cwd, sources);
  const appDir = configPath ? dirname(configPath) : cwd;
  const ctx: NormaliseContext = { appDir, configPath, env, sources };
  const config = validate(fileInput, flagInput, ctx);
  const overrides = flagOverrides(fileInput, flagInput, appDir, sources).map((o) => withFileVerdict(o, fileInput, flagInput, ctx));
  return overrides.length > 0 ? { ...config, flagOverrides: overrides } : config;
}

/**
 * The config file the flags name: none with `--no-config` (given with `--config` too: refused,
 * ERR_CONFIG_INVALID), else --config or ./hitless.json when present (findConfigFile).
 *
 * @example
 * configFileOf({ noConfig: true }, '/srv/app'); // undefined, even with /srv/app/hitless.json
 */
export function configFileOf(flags: Pick<ConfigFlags, 'config' | 'noConfig'>, cwd: string): string | undefined {
  if (!flags.noConfig) return findConfigFile(flags.config, cwd);
  if (flags.config !== undefined) throw new HitlessError('ERR_CONFIG_INVALID', '--no-config and --config contradict each other; give one of them');
  return undefined;
}

/** The flags over the file (env merged by variable), validated and normalised. */
function validate(fileInput: Record<string, unknown>, flagInput: Record<string, unknown>, ctx: NormaliseContext): MasterConfig {
  const merged: Record<string, unknown> = { ...fileInput, ...flagInput };
  if (flagInput.env && fileInput.env && typeof fileInput.env === 'object') {
    merged.env = { ...(fileInput.env as object), ...(flagInput.env as object) };
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw configErrorFromZod(parsed.error, merged, ctx.sources, unschemaProblems(merged, parsed.error.issues, ctx.appDir, ctx.sources));
  return normalise(parsed.data, ctx);
}

/**
 * `o` with `invalid` set when the file's own value would be refused: the configuration is
 * validated again without that one flag, as a master started without it would be (a
 * file's `"workers": "x"` hidden by --workers passes otherwise, and the advice to restart
 * without the flag would end in exit 2: report h16 F4).
 */
function withFileVerdict(o: FlagOverride, fileInput: Record<string, unknown>, flagInput: Record<string, unknown>, ctx: NormaliseContext): FlagOverride {
  const top = o.key.startsWith('env.') ? 'env' : o.key;
  const without = { ...flagInput };
  delete without[top];
  if (top === 'env') {
    const env = { ...(flagInput.env as Record<string, string>) };
    delete env[o.key.slice('env.'.length)];
    if (Object.keys(env).length > 0) without.env = env;
  }
  // The value is the file's now: messages name the file's key, not the flag.
  const flags = { ...ctx.sources.flags };
  delete flags[top];
  try {
    validate(fileInput, without, { ...ctx, sources: { ...ctx.sources, flags } });
    return o;
  } catch (err) {
    if (!isHitlessError(err)) throw err;
    return { ...o, invalid: err.message };
  }
}

/** Keys the file sets that a flag sets to something else (paths compared resolved; env by variable). */
function flagOverrides(file: Record<string, unknown>, flags: Record<string, unknown>, appDir: string, sources: ValueSources): FlagOverride[] {
  const out: FlagOverride[] = [];
  for (const [key, value] of Object.entries(flags)) {
    if (!(key in file)) continue;
    const fileValue = file[key];
    const flag = sources.flags[key] ?? key;
    if (key === 'env') {
      const fileEnv = (fileValue ?? {}) as Record<string, unknown>;
      for (const [name, v] of Object.entries(value as Record<string, string>)) {
        if (name in fileEnv && fileEnv[name] !== v) out.push({ key: `env.${name}`, flag, file: fileEnv[name] });
      }
      continue;
    }
    const same = PATH_KEYS.has(key) && typeof fileValue === 'string' ? resolve(appDir, fileValue) === value : JSON.stringify(fileValue) === JSON.stringify(value);
    if (!same) out.push({ key, flag, file: fileValue });
  }
  return out;
}

/** Keys whose values are paths: a flag's is resolved against the working directory, the file's against the app folder. */
const PATH_KEYS = new Set(['cwd', 'runDir', 'pidFile']);

interface NormaliseContext {
  appDir: string;
  configPath: string | undefined;
  env: NodeJS.ProcessEnv;
  sources: ValueSources;
}

const NO_COMMAND = 'no worker command: add "command": ["node", "server.js"] to hitless.json, or pass it after --: `hitless start --listen 8080 -- node server.js`';

/** The listen entries parsed, and what is wrong with them (each entry, then names and addresses). */
function checkListen(entries: ConfigInput['listen'], appDir: string, sources: ValueSources): { listen: ListenerSpec[]; problems: string[] } {
  const listen: ListenerSpec[] = [];
  const problems: string[] = [];
  const caught = (err: unknown, path: PropertyKey[], value: unknown): void => {
    if (!(err instanceof ListenError)) throw err;
    problems.push(configError(path, value, err.message, sources).message);
  };
  (entries ?? []).forEach((entry, i) => {
    try {
      listen.push(parseListen(entry, i, appDir));
    } catch (err) {
      caught(err, ['listen', i], entry);
    }
  });
  if (problems.length > 0) return { listen, problems };
  try {
    checkUniqueNames(listen);
    checkDistinctAddresses(listen);
  } catch (err) {
    caught(err, ['listen'], entries);
  }
  return { listen, problems };
}

/**
 * The problems the schema check cannot see, of the keys it found nothing wrong with: a
 * missing command and bad listen addresses (a --listen flag's port out of range) are
 * reported with a file's mistyped keys, so one run shows everything to fix.
 */
function unschemaProblems(input: Record<string, unknown>, issues: readonly { path: PropertyKey[] }[], appDir: string, sources: ValueSources): string[] {
  const flagged = new Set(issues.map((issue) => issue.path[0]));
  const problems: string[] = [];
  if (!flagged.has('command') && input.command === undefined) problems.push(NO_COMMAND);
  if (!flagged.has('listen') && Array.isArray(input.listen)) problems.push(...checkListen(input.listen as ConfigInput['listen'], appDir, sources).problems);
  return problems;
}

function normalise(input: ConfigInput, ctx: NormaliseContext): MasterConfig {
  const { appDir, sources } = ctx;
  // Every problem is collected, then thrown as one error listing them all.
  const problems: string[] = [];
  const fail = (path: PropertyKey[], value: unknown, problem: string): void => {
    problems.push(configError(path, value, problem, sources).message);
  };
  const command = input.command;
  if (!command) problems.push(NO_COMMAND);
  const { listen, problems: listenProblems } = checkListen(input.listen, appDir, sources);
  problems.push(...listenProblems);
  const restart = {
    backoffInitial: parseDuration(input.restart?.backoffInitial ?? DEFAULT_RESTART.backoffInitial),
    backoffMax: parseDuration(input.restart?.backoffMax ?? DEFAULT_RESTART.backoffMax),
    maxRestarts: input.restart?.maxRestarts ?? DEFAULT_RESTART.maxRestarts,
    window: parseDuration(input.restart?.window ?? DEFAULT_RESTART.window),
  };
  if (restart.backoffInitial > restart.backoffMax) {
    // Name the key the user wrote: a backoffMax below the default backoffInitial is backoffMax's problem.
    if (input.restart?.backoffInitial === undefined) {
      fail(['restart', 'backoffMax'], input.restart?.backoffMax, `it is below restart.backoffInitial (${restart.backoffInitial} ms by default); raise it, or lower backoffInitial too`);
    } else fail(['restart', 'backoffInitial'], input.restart?.backoffInitial, `it is larger than restart.backoffMax (${restart.backoffMax} ms); lower it or raise backoffMax`);
  }
  if (input.fetch?.sha256 && input.fetch.sha256Url) {
    fail(['fetch', 'sha256Url'], input.fetch.sha256Url, 'give either fetch.sha256 or fetch.sha256Url, not both');
  }
  if (input.metrics) {
    let at: { host: string; port: number } | undefined;
    try {
      at = parseMetricsListen(input.metrics.listen);
    } catch {
      fail(['metrics', 'listen'], input.metrics.listen, 'expected [host:]port with an IP address as host, like "127.0.0.1:9100" or ":9100" (a bare port binds 127.0.0.1; hostnames are not resolved)');
    }
    const clash = at && at.port !== 0 ? listenEntryAt(listen, at.host, at.port) : undefined;
    if (clash) fail(['metrics', 'listen'], input.metrics.listen, `it takes the address of the app's own listen entry ${JSON.stringify(clash.source)} (one socket cannot be bound twice); give metrics another port`);
  }
  const workers = input.workers === 'auto' ? Math.min(MAX_WORKERS, availableParallelism()) : (input.workers ?? DEFAULT_WORKERS);
  const canary = {
    workers: input.canary?.workers ?? DEFAULT_CANARY.workers,
    duration: parseDuration(input.canary?.duration ?? DEFAULT_CANARY.duration),
    warmup: parseDuration(input.canary?.warmup ?? DEFAULT_CANARY.warmup),
    minRequests: input.canary?.minRequests ?? DEFAULT_CANARY.minRequests,
    maxErrorRate: input.canary?.maxErrorRate ?? DEFAULT_CANARY.maxErrorRate,
    maxLatencyRatio: input.canary?.maxLatencyRatio ?? DEFAULT_CANARY.maxLatencyRatio,
    then: input.canary?.then ?? DEFAULT_CANARY.then,
    connections: input.canary?.connections ?? DEFAULT_CANARY.connections,
  };
  if (input.canary?.workers !== undefined && canary.workers > workers) {
    fail(['canary', 'workers'], input.canary.workers, `it is more than workers (${workers}); a canary is part of the new generation: lower canary.workers or raise workers`);
  }
  if (problems.length > 0 || !command) throw configErrorOf(problems);
  // Alone, and after the others: `hitless check` takes it for a warning (socket activation).
  requireListenAddress(listen, Boolean(ctx.env.LISTEN_FDS));
  const fromApp = (p: string): string => resolve(appDir, p);
  return {
    configPath: ctx.configPath,
    appDir,
    command,
    listen,
    workers,
    readyTimeout: parseDuration(input.readyTimeout ?? DEFAULT_READY_TIMEOUT_MS),
    drainTimeout: parseDuration(input.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT_MS),
    stayReady: parseDuration(input.stayReady ?? DEFAULT_STAY_READY_MS),
    stopSignal: (input.stopSignal ?? DEFAULT_STOP_SIGNAL) as NodeJS.Signals,
    readyAfter: input.readyAfter === undefined || input.readyAfter === null ? DEFAULT_READY_AFTER_MS : parseDuration(input.readyAfter),
    env: input.env ?? {},
    cwd: input.cwd ? fromApp(input.cwd) : appDir,
    strategy: input.strategy ?? DEFAULT_STRATEGY,
    canary,
    handover: input.handover ?? DEFAULT_HANDOVER,
    handoverSpread: parseDuration(input.handoverSpread ?? DEFAULT_HANDOVER_SPREAD_MS),
    drain: {
      spread: parseDuration(input.drain?.spread ?? DEFAULT_DRAIN.spread),
      reloadWait: parseDuration(input.drain?.reloadWait ?? DEFAULT_DRAIN.reloadWait),
      maxGenerations: input.drain?.maxGenerations ?? DEFAULT_DRAIN.maxGenerations,
    },
    bootNice: input.bootNice ?? DEFAULT_BOOT_NICE,
    bootConcurrency: input.bootConcurrency ?? DEFAULT_BOOT_CONCURRENCY,
    // A folder is relative to the app folder; true means one in the run dir (resolved by the master).
    compileCache: typeof input.compileCache === 'string' ? fromApp(input.compileCache) : (input.compileCache ?? DEFAULT_COMPILE_CACHE),
    warmup: input.warmup ?? [...DEFAULT_WARMUP],
    warmupRounds: input.warmupRounds ?? DEFAULT_WARMUP_ROUNDS,
    restart,
    runDir: resolveRunDir(appDir, input.runDir && fromApp(input.runDir), ctx.env),
    pidFile: input.pidFile && fromApp(input.pidFile),
    logFormat: input.logFormat ?? DEFAULT_LOG_FORMAT,
    preload: input.preload ?? DEFAULT_PRELOAD,
    release: { keep: input.release?.keep ?? DEFAULT_RELEASE_KEEP, prepare: input.release?.prepare },
    watch: input.watch && {
      paths: input.watch.paths.map(fromApp),
      debounce: parseDuration(input.watch.debounce ?? DEFAULT_WATCH_DEBOUNCE_MS),
    },
    fetch: input.fetch && {
      url: input.fetch.url,
      interval: parseDuration(input.fetch.interval ?? DEFAULT_FETCH.interval),
      sha256: input.fetch.sha256?.toLowerCase(),
      sha256Url: input.fetch.sha256Url,
      headers: input.fetch.headers ?? {},
      maxBytes: parseSize(input.fetch.maxBytes ?? DEFAULT_FETCH.maxBytes) ?? DEFAULT_FETCH.maxBytes,
      timeout: parseDuration(input.fetch.timeout ?? DEFAULT_FETCH.timeout),
    },
    user: input.user,
    group: input.group,
    logs: {
      mode: input.logs?.mode ?? DEFAULT_LOGS.mode,
      dir: fromApp(input.logs?.dir ?? DEFAULT_LOGS.dir),
      maxSize: parseSize(input.logs?.maxSize ?? DEFAULT_LOGS.maxSize) ?? DEFAULT_LOGS.maxSize,
      keep: input.logs?.keep ?? DEFAULT_LOGS.keep,
      tag: input.logs?.tag ?? DEFAULT_LOGS.tag,
      timestamps: input.logs?.timestamps ?? DEFAULT_LOGS.timestamps,
    },
    metrics: input.metrics && { listen: input.metrics.listen },
  };
}
