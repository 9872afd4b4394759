/**
 * Every key of the master's configuration, in one typed table (issue 21): the flag of
 * `hitless start` that sets it, whether a reload can apply it, and how the reload diff
 * shows it (its dotted keys and values, secrets hidden). The diff (changes.ts), the flag
 * names in messages (load.ts) and the keys a reload keeps (master/reconfigure.ts) all read
 * it; test/master/config-keys.test.ts checks docs/CONFIG.md's key table and `hitless start
 * --help` against it.
 *
 * A new key goes here in the same change that adds it to MasterConfig (types.ts): the
 * table `satisfies` a record over every key of MasterConfig, and each nested section over
 * every key of its type, so a key left out does not compile. The order is docs/CONFIG.md's,
 * which is the order of a reload's changes. Zod-free: the master and the client commands
 * use it without loading the schema.
 */
import { formatDuration } from './duration.js';
import type { CanaryConfig, DrainConfig, FetchConfig, ListenerSpec, LogsConfig, MasterConfig, ReleaseConfig, RestartPolicy, WatchConfig } from './types.js';
import { safeUrl } from '../text/url.js';

/** Stands in for a secret value in a change. */
export const HIDDEN = '(hidden)';

/** A value as the diff compares it (`raw`) and shows it (`shown`); a string is both; undefined: not set. */
export type Text = string | { raw: string; shown: string } | undefined;

/** Writes a key's values: `suffix` is what follows the key's name (`''`, `.window`, `.API_KEY`). */
export type Out = (suffix: string, text: Text) => void;

/** How one key (or a part of a section) appears in the diff. */
export type Flatten<V> = (value: V, out: Out) => void;

export interface KeyInfo<V> {
  /** The `hitless start` flag that sets it, as messages name it. */
  flag?: string;
  /** Why a reload cannot apply a change of it, and what to do instead (the change is marked NOT APPLIED). */
  restartOnly?: string;
  /** How the reload diff shows it; `{ omitted }`: not in the diff, and why. */
  diff: Flatten<V> | { omitted: string };
}

const ms = (n: number): string => formatDuration(n);
const bytes = (n: number): string => (n % 1024 ** 2 === 0 ? `${n / 1024 ** 2}M` : n % 1024 === 0 ? `${n / 1024}k` : `${n}`);


/**
 * `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/app.sock?mode=0660`.
 *
 * @example
 * describeListener({ name: 'http', kind: 'tcp', host: '::1', port: 8080, source: '[::1]:8080' }); // '[::1]:8080'
 */
export function describeListener(spec: ListenerSpec): string {
  if (spec.kind === 'unix') return `unix:${spec.path}${spec.mode === undefined ? '' : `?mode=0${spec.mode.toString(8)}`}`;
  return spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
}

/** One value, shown by `show` (String by default); null and undefined are "not set". */
const value = <V>(show: (v: NonNullable<V>) => Text = String): Flatten<V> =>
  (v, out) => out('', v === undefined || v === null ? undefined : show(v as NonNullable<V>));

/** A section: each of its keys, by its own rule; `satisfies` every key of T, so none is forgotten. */
const section = <T extends object>(parts: { [K in keyof Required<T>]: Flatten<T[K]> }): Flatten<T | undefined> =>
  (v, out) => {
    if (v === undefined) return;
    for (const key of Object.keys(parts) as (keyof T)[]) {
      (parts[key] as Flatten<unknown>)(v[key], (suffix, text) => out(`.${String(key)}${suffix}`, text));
    }
  };

/** A record of secrets (env, fetch headers): each key by name, its value never shown. */
const secrets: Flatten<Record<string, string>> = (v, out) => {
  for (const [k, x] of Object.entries(v)) out(`.${k}`, { raw: x, shown: HIDDEN });
};

const json = (v: unknown): string => JSON.stringify(v);

/** Each listener by name, and their order (a pure reordering is a change of its own). */
const listeners: Flatten<ListenerSpec[]> = (v, out) => {
  for (const l of v) out(`.${l.name}`, describeListener(l));
  out(' (order)', v.map((l) => l.name).join(', '));
};

/**
 * The table. Keys without a flag are set in hitless.json only.
 *
 * @example
 * CONFIG_KEYS.workers.flag; // '--workers'
 */
export const CONFIG_KEYS = {
  configPath: {
    restartOnly: 'the master keeps reading the file it was started from; restart it (hitless stop, hitless start) to use another',
    diff: value<string | undefined>(),
  },
  appDir: { diff: { omitted: "it follows configPath (the file's folder) or the folder `hitless start` ran in, which a reload cannot change" } },
  flagOverrides: { diff: { omitted: 'not a setting: which file keys the start flags override (a reload notes them)' } },
  command: { flag: 'the command after --', diff: value<string[]>(json) },
  listen: { flag: '--listen', diff: listeners },
  workers: { flag: '--workers', diff: value<number>() },
  readyTimeout: { flag: '--ready-timeout', diff: value<number>(ms) },
  drainTimeout: { flag: '--drain-timeout', diff: value<number>(ms) },
  stayReady: { flag: '--stay-ready', diff: value<number | undefined>(ms) },
  readyAfter: { flag: '--ready-after', diff: (v: number | null, out: Out) => out('', v === null ? 'null (wait for READY=1)' : ms(v)) },
  stopSignal: { flag: '--stop-signal', diff: value<NodeJS.Signals>() },
  env: { flag: '--env', diff: secrets },
  cwd: { flag: '--cwd', diff: value<string>() },
  strategy: { flag: '--strategy', diff: value<string>() },
  canary: {
    diff: section<CanaryConfig>({
      workers: value(), duration: value(ms), warmup: value(ms), minRequests: value(), maxErrorRate: value(), maxLatencyRatio: value(), then: value(),
      connections: value(),
    }),
  },
  handover: { flag: '--no-handover', diff: value<boolean>() },
  handoverSpread: { flag: '--handover-spread', diff: value<number | undefined>(ms) },
  drain: { diff: section<DrainConfig>({ spread: value(ms), reloadWait: value(ms), maxGenerations: value() }) },
  bootNice: { flag: '--boot-nice', diff: value<number | undefined>() },
  bootConcurrency: { flag: '--boot-concurrency', diff: value<number | 'auto' | undefined>() },
  compileCache: { flag: '--no-compile-cache', diff: value<boolean | string | undefined>() },
  warmup: { flag: '--warmup', diff: value<string[] | undefined>(json) },
  warmupRounds: { flag: '--warmup-rounds', diff: value<number | undefined>() },
  restart: {
    diff: section<RestartPolicy>({ backoffInitial: value(ms), backoffMax: value(ms), maxRestarts: value(), window: value(ms) }),
  },
  runDir: { flag: '--run-dir', restartOnly: 'the control socket stays where the master created it; restart the master to move it', diff: value<string>() },
  pidFile: { flag: '--pid-file', restartOnly: 'the pid file is written once at start; restart the master to move it', diff: value<string | undefined>() },
  logFormat: { flag: '--log-format', restartOnly: "the master's own log format is set at start; restart the master to change it", diff: value<string>() },
  // Absent means true (a configuration saved before the key existed).
  preload: { flag: '--no-preload', diff: (v: boolean | undefined, out: Out) => out('', String(v !== false)) },
  release: { diff: section<ReleaseConfig>({ keep: value(), prepare: value(json) }) },
  watch: { diff: section<WatchConfig>({ paths: value(json), debounce: value(ms) }) },
  fetch: {
    diff: section<FetchConfig>({
      // The query string of a presigned URL is a credential: compared, never shown.
      url: value((u) => ({ raw: u, shown: safeUrl(u) })),
      interval: value(ms), sha256: value(), sha256Url: value<string | undefined>(safeUrl), headers: secrets, maxBytes: value(bytes), timeout: value(ms),
    }),
  },
  user: { diff: value<string | undefined>() },
  group: { diff: value<string | undefined>() },
  logs: { diff: section<LogsConfig>({ mode: value(), dir: value(), maxSize: value(bytes), keep: value(), tag: value(), timestamps: value<boolean | undefined>() }) },
  metrics: { diff: section<{ listen: string }>({ listen: value() }) },
} satisfies { [K in keyof Required<MasterConfig>]: KeyInfo<MasterConfig[K]> };

export type ConfigKey = keyof typeof CONFIG_KEYS;

const entries = Object.entries(CONFIG_KEYS) as [ConfigKey, KeyInfo<unknown>][];

/** Keys a reload cannot apply, with what to do instead. */
export const RESTART_ONLY: Readonly<Record<string, string>> = Object.fromEntries(
  entries.flatMap(([key, info]) => (info.restartOnly ? [[key, info.restartOnly]] : [])),
);

/** The flag that sets each key, for messages (`set by --workers`). */
export const FLAG_FOR_KEY: Readonly<Record<string, string>> = Object.fromEntries(
  entries.flatMap(([key, info]) => (info.flag ? [[key, info.flag]] : [])),
);

/**
 * A configuration as the diff compares it: every dotted key that is set, in the table's
 * order, with its value as compared and as shown.
 *
 * @example
 * flattenConfig(config).get('restart.window'); // { raw: '1 min', shown: '1 min' }
 */
export function flattenConfig(c: MasterConfig): Map<string, { raw: string; shown: string }> {
  const flat = new Map<string, { raw: string; shown: string }>();
  for (const [key, info] of entries) {
    if (!(typeof info.diff === 'function')) continue;
    info.diff(c[key], (suffix, text) => {
      if (text === undefined) return;
      flat.set(`${key}${suffix}`, typeof text === 'string' ? { raw: text, shown: text } : text);
    });
  }
  return flat;
}
