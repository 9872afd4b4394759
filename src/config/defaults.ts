/**
 * Every default of the master's configuration, in one place (docs/CONFIG.md lists the
 * same values; the config tests check a few of them end to end).
 */

/** Worker processes per generation. */
export const DEFAULT_WORKERS = 1;
/** How long new workers have to write READY=1. */
export const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** How long old workers have to drain before SIGKILL. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/**
 * How long every worker of a new generation must have been ready before it is said to
 * serve (config `stayReady`): before a reload is done (phase `settling`) and before
 * `hitless start --detach` says the first generation runs. A worker that exits within it
 * fails the reload (rolled back to the old version) or the start (report h21 F1).
 */
export const DEFAULT_STAY_READY_MS = 1_000;
/** null: wait for READY=1 instead of declaring workers ready after a delay. */
export const DEFAULT_READY_AFTER_MS: number | null = null;
export const DEFAULT_STOP_SIGNAL: NodeJS.Signals = 'SIGTERM';
export const DEFAULT_STRATEGY = 'all' as const;
/** Every reload strategy, by name (src/core/strategies/). */
export const STRATEGY_NAMES = ['all', 'rolling', 'canary'] as const;

/** The canary strategy's settings (docs/canary.md). */
export const DEFAULT_CANARY = {
  workers: 1,
  duration: 30_000,
  warmup: 5_000,
  minRequests: 100,
  maxErrorRate: 0.01,
  maxLatencyRatio: 2,
  then: 'all' as const,
  /** "auto": canary.workers / workers of each serving worker's kept-alive connections, at most half (src/core/strategies/canary.ts). */
  connections: 'auto' as number | 'auto',
};
/** Hand keep-alive connections to the new generation on reload (where the worker can). */
export const DEFAULT_HANDOVER = true;
/**
 * How old generations drain long-lived connections: closes of upgraded connections spread
 * over 5 s (1,000 WebSocket clients reconnect at ~200/s instead of all at once); a reload
 * waits at most 30 s (the default drainTimeout) for old workers that cannot say they hold
 * only such connections; at most 3 old generations draining in the background.
 */
export const DEFAULT_DRAIN = {
  spread: 5_000,
  reloadWait: 30_000,
  maxGenerations: 3,
} as const;
/**
 * Nice increment of a worker that starts while others serve, until READY (issue 23): at
 * nice 10 the kernel gives it about a tenth of a serving worker's CPU share when both want
 * the CPU, and all the CPU that is idle.
 */
export const DEFAULT_BOOT_NICE = 10;
/**
 * How many workers boot at once while others serve (issue 23): "auto" is half the CPUs,
 * at least one, so a reload's boot leaves the other half of the cores to the serving workers.
 */
export const DEFAULT_BOOT_CONCURRENCY = 'auto' as const;
/**
 * How long a reload's hand-over is paced (issue 23): for up to this long the master lets
 * an old worker send its next connection only after HANDOVER_SPREAD times as long as the
 * previous one's move took (src/core/handover.ts), so moving connections takes a small
 * share of the CPU the serving workers need; what is left then moves at full speed.
 */
export const DEFAULT_HANDOVER_SPREAD_MS = 5_000;
/** Workers get Node's compile cache in a folder of the run dir (Node >= 22.1 uses it). */
export const DEFAULT_COMPILE_CACHE = true;
/** Folder of the compile cache inside the run dir. */
export const COMPILE_CACHE_DIR = 'compile-cache';
/** No warm-up requests unless configured. */
export const DEFAULT_WARMUP: readonly string[] = [];
/** Each warm-up path once: enough to load what a request loads lazily (not to let V8 optimise it). */
export const DEFAULT_WARMUP_ROUNDS = 1;
export const DEFAULT_LOG_FORMAT = 'text' as const;
/** Give Node workers the preload that turns their own listen(port) into adoption (docs/frameworks.md). */
export const DEFAULT_PRELOAD = true;
/** Config file looked up in the working directory when --config is not given. */
export const DEFAULT_CONFIG_FILE = 'hitless.json';

export const DEFAULT_RESTART = {
  backoffInitial: 100,
  backoffMax: 10_000,
  maxRestarts: 5,
  window: 60_000,
} as const;

export const DEFAULT_RELEASE_KEEP = 5;
export const DEFAULT_WATCH_DEBOUNCE_MS = 500;

export const DEFAULT_FETCH = {
  interval: 60_000,
  maxBytes: 512 * 1024 * 1024,
  timeout: 60_000,
} as const;

export const DEFAULT_LOGS = {
  mode: 'inherit' as const,
  /** Relative to the app folder. */
  dir: 'logs',
  maxSize: 10 * 1024 * 1024,
  keep: 5,
  tag: false,
  /** Prefix each worker line with the time the master read it (ISO 8601, UTC). */
  timestamps: false,
};
