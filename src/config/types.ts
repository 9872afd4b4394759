/**
 * The master's configuration after defaults and validation: what src/config produces from
 * hitless.json + flags, and what each generation snapshots as its spec.
 *
 * Durations are milliseconds everywhere inside the master.
 */
import type { STRATEGY_NAMES } from './defaults.js';

/** One listening address, parsed from a `[name=]address` string. */
export type ListenerSpec =
  | { name: string; kind: 'tcp'; host: string; port: number; ipv6Only?: boolean; source: string }
  | { name: string; kind: 'unix'; path: string; mode: number | undefined; source: string };

export interface RestartPolicy {
  /** First delay before restarting a crashed worker. */
  backoffInitial: number;
  /** Ceiling of the exponential backoff. */
  backoffMax: number;
  /** More than this many crashes of one slot within `window` marks the slot failed. */
  maxRestarts: number;
  window: number;
}

/** How a reload brings the next generation up (src/core/strategies/). */
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** The canary strategy's settings (docs/canary.md). */
export interface CanaryConfig {
  /** New workers started first, beside the serving generation. */
  workers: number;
  /** How long their figures are compared with the serving generation's, ms. */
  duration: number;
  /** The first part of `duration` left out of the latency comparison (at most half of it), ms. */
  warmup: number;
  /** Fewer canary responses than this by the end of `duration` is inconclusive (the reload fails). */
  minRequests: number;
  /** Highest 5xx share (0..1) the canary may show. */
  maxErrorRate: number;
  /** Highest canary p99 as a multiple of the serving generation's p99. */
  maxLatencyRatio: number;
  /** How the rest of the generation goes live after a pass. */
  then: 'all' | 'rolling';
  /**
   * Kept-alive connections the serving workers hand to the canary while it is judged:
   * "auto" (canary.workers / workers, at most half), a share from 0 to 1 of each serving
   * worker's connections, or a count (a whole number above 1) in all.
   */
  connections: number | 'auto';
}

/** A key of the config file a start flag overrides: the flag, and what the file says. */
export interface FlagOverride {
  key: string;
  flag: string;
  /** The file's value, as written there. */
  file: unknown;
  /**
   * Set when the file's own value would be refused: what a master started without the
   * flag would say (the flag hides it; dropping the flag would fail the start).
   */
  invalid?: string;
}

/** The master's configuration after defaults and validation. */
export interface MasterConfig {
  /** Absolute path of the config file, when one was read. */
  configPath: string | undefined;
  /** The app folder: where `releases/` and `current` live (config file's folder, else cwd). */
  appDir: string;
  /**
   * Keys the config file sets and a start flag sets otherwise (the flag wins): a reload
   * says so, since an edit of such a key in the file changes nothing. Absent when none.
   */
  flagOverrides?: FlagOverride[];
  /** Program and arguments of every worker. */
  command: string[];
  listen: ListenerSpec[];
  workers: number;
  readyTimeout: number;
  drainTimeout: number;
  /**
   * How long (ms) every new worker must have been ready before a reload is done, or a
   * detached start says it serves; a worker exiting within it fails the reload (rolled
   * back) or the start. 0: no wait. Absent means the default (a configuration saved before
   * the key existed).
   */
  stayReady?: number;
  stopSignal: NodeJS.Signals;
  /** null: wait for READY=1; a number: declare ready after that long alive. */
  readyAfter: number | null;
  env: Record<string, string>;
  /** Working directory of workers when the app folder has no `current` release. */
  cwd: string;
  strategy: StrategyName;
  /** How a canary reload judges the new version (used when the strategy is "canary"). */
  canary: CanaryConfig;
  /** On reload, hand keep-alive connections to the new generation instead of closing them. */
  handover: boolean;
  /** For how long (ms) a reload's hand-over is paced, 0: full speed. Absent means the default. */
  handoverSpread?: number;
  /** How old generations drain their long-lived (upgraded) connections (docs/websockets.md). */
  drain: DrainConfig;
  /**
   * How much lower (nice increment) a worker starting while others serve runs until READY,
   * where the master may restore it (src/core/priority.ts); 0: off. Absent means the default.
   */
  bootNice?: number;
  /**
   * How many workers boot at once while others serve (a reload's new generation, a
   * scale-up): a number, or "auto" (half the CPUs, at least 1). Absent means the default.
   */
  bootConcurrency?: number | 'auto';
  /**
   * Node's on-disk compile cache for workers (NODE_COMPILE_CACHE, Node >= 22.1): true = a
   * folder in the run dir, a string = that folder, false = off. Absent means the default.
   */
  compileCache?: boolean | string;
  /** Paths requested from each new worker after READY, before a reload switches to it ([]: none). */
  warmup?: string[];
  /** How many times the `warmup` paths are requested from each new worker. Absent means 1. */
  warmupRounds?: number;
  restart: RestartPolicy;
  /** Private folder (0700) of the control socket. */
  runDir: string;
  pidFile: string | undefined;
  logFormat: 'text' | 'json';
  /** Node workers get the preload (NODE_OPTIONS --import) that adopts held ports they listen on; undefined means true. */
  preload?: boolean;
  /** Releases (`hitless release`): how many to keep and the optional prepare command. */
  release: ReleaseConfig;
  /** Reload when these paths change (undefined: off). */
  watch: WatchConfig | undefined;
  /** Poll an artifact URL and install it as a release (undefined: off). */
  fetch: FetchConfig | undefined;
  /** Run workers as this user/group (the master keeps its own). */
  user: string | undefined;
  group: string | undefined;
  /** Where worker output goes. */
  logs: LogsConfig;
  /** Prometheus endpoint (undefined: off). */
  metrics: { listen: string } | undefined;
}

/** How old generations drain long-lived connections (WebSockets) across reloads. */
export interface DrainConfig {
  /**
   * Window over which an old worker closes its upgraded connections (WebSocket close 1001,
   * one at a time, evenly spread), so clients do not all reconnect in the same instant, ms.
   */
  spread: number;
  /**
   * Longest a reload waits for old workers that did not say they hold only upgraded
   * connections (workers without the in-app library or the preload), ms; then the reload is
   * done and they drain in the background until drainTimeout.
   */
  reloadWait: number;
  /**
   * At most this many old generations drain in the background at once; one more, and the
   * oldest is stopped at once (SIGKILL, its connections counted as forced).
   */
  maxGenerations: number;
}

export interface ReleaseConfig {
  /** Releases kept under releases/ that did not fail to go live (default 5); of the failed ones only the newest is kept; current and previous are never pruned. */
  keep: number;
  /** Command run inside a new release folder before it is switched to (argv form). */
  prepare: string[] | undefined;
}

export interface WatchConfig {
  paths: string[];
  debounce: number;
}

export interface FetchConfig {
  url: string;
  interval: number;
  sha256: string | undefined;
  sha256Url: string | undefined;
  headers: Record<string, string>;
  maxBytes: number;
  timeout: number;
}

export interface LogsConfig {
  /** 'inherit': pass worker stdout/stderr through to the master's; 'file': write to rotated files. */
  mode: 'inherit' | 'file';
  /** Folder of log files (mode 'file'). */
  dir: string;
  /** Rotate a file when it reaches this many bytes. */
  maxSize: number;
  /** Rotated files kept. */
  keep: number;
  /** Prefix each worker line with its generation and slot. */
  tag: boolean;
  /** Prefix each worker line with the time the master read it (ISO 8601, UTC); default false. */
  timestamps?: boolean;
}

/**
 * One difference between two effective configurations. Values are shown as people read
 * them; secrets never are: `env` and `fetch.headers` values appear as "(hidden)".
 */
export interface ConfigChange {
  /** Dotted key: `workers`, `env.API_KEY`, `listen.admin`, `restart.window`. */
  key: string;
  /** The value before and after (null: not set). */
  from: string | null;
  to: string | null;
  /** Present when a reload cannot apply this change: why, and what to do instead. */
  notApplied?: string;
  /** A listener whose address stayed under a new name (`listen.<new>`): its old name. It keeps its socket. */
  renamedFrom?: string;
}
