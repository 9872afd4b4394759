/**
 * Types shared by the master's parts: the normalised configuration (what config.ts
 * produces from hitless.json + flags), the status snapshot and reload outcome (what the
 * supervisor reports and the control socket carries), and the master's events (what
 * logs and metrics consume).
 *
 * Durations are milliseconds everywhere inside the master.
 */

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

/** The master's configuration after defaults and validation. */
export interface MasterConfig {
  /** Absolute path of the config file, when one was read. */
  configPath: string | undefined;
  /** The app folder: where `releases/` and `current` live (config file's folder, else cwd). */
  appDir: string;
  /** Program and arguments of every worker. */
  command: string[];
  listen: ListenerSpec[];
  workers: number;
  readyTimeout: number;
  drainTimeout: number;
  stopSignal: NodeJS.Signals;
  /** null: wait for READY=1; a number: declare ready after that long alive. */
  readyAfter: number | null;
  env: Record<string, string>;
  /** Working directory of workers when the app folder has no `current` release. */
  cwd: string;
  strategy: 'all' | 'rolling';
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

export interface ReleaseConfig {
  /** Releases kept under releases/ (default 5); current and previous are never pruned. */
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
}

export type WorkerState = 'starting' | 'ready' | 'draining' | 'exited' | 'failed';

export interface WorkerStatus {
  generation: number;
  slot: number;
  pid: number | undefined;
  state: WorkerState;
  startedAt: number;
  readyAt: number | undefined;
  restarts: number;
  /** Last `STATUS=` line the worker sent. */
  statusText: string | undefined;
  release: string | undefined;
  /** Resident memory in bytes and CPU use since the last status call, read from /proc (Linux). */
  rssBytes?: number;
  cpuPercent?: number;
}

export interface ListenerStatus {
  name: string;
  address: string;
  fd: number;
  /** Set when the socket came from systemd (LISTEN_FDS given to the master). */
  inherited: boolean;
}

export interface ReloadOutcome {
  ok: boolean;
  /** The generation now serving. */
  generation: number;
  /** The generation that was tried (equal to `generation` on success). */
  attempted: number;
  reason: string;
  startedAt: number;
  durationMs: number;
  /** Connections/workers force-killed at drainTimeout (workers SIGKILLed). */
  forced: number;
  /** On failure: error code, message and the failed workers' last output lines. */
  error?: { code: string; message: string; output: string[] };
  /** True when this request joined a reload already queued. */
  coalesced?: boolean;
}

export interface StatusSnapshot {
  version: string;
  pid: number;
  startedAt: number;
  uptimeMs: number;
  state: 'starting' | 'running' | 'reloading' | 'stopping';
  generation: number;
  release: string | undefined;
  listeners: ListenerStatus[];
  workers: WorkerStatus[];
  lastReload: ReloadOutcome | undefined;
  reloadQueued: boolean;
  /** The master's own memory: resident set and V8 heap in use, in bytes. */
  memory?: { rssBytes: number; heapUsedBytes: number };
}

/** What the master reports as it works: consumed by the logger, metrics and live CLI feedback. */
export type MasterEvent =
  | { type: 'master-start'; pid: number; listeners: ListenerStatus[] }
  | { type: 'master-ready'; generation: number; ms: number }
  | { type: 'master-stop'; reason: string }
  | { type: 'worker-spawn'; generation: number; slot: number; pid: number | undefined }
  | { type: 'worker-ready'; generation: number; slot: number; pid: number; ms: number }
  | { type: 'worker-status'; generation: number; slot: number; text: string }
  | {
      type: 'worker-exit';
      generation: number;
      slot: number;
      pid: number | undefined;
      code: number | null;
      signal: NodeJS.Signals | null;
      planned: boolean;
    }
  | { type: 'worker-restart'; generation: number; slot: number; attempt: number; delayMs: number }
  | { type: 'slot-failed'; generation: number; slot: number; restarts: number }
  | { type: 'reload-queued'; reason: string }
  | { type: 'reload-start'; generation: number; reason: string }
  | { type: 'reload-ready'; generation: number; ms: number }
  | { type: 'reload-draining'; generation: number; workers: number }
  | { type: 'reload-drained'; generation: number; forced: number; ms: number }
  | { type: 'reload-done'; outcome: ReloadOutcome }
  | { type: 'worker-output'; generation: number; slot: number; stream: 'stdout' | 'stderr'; line: string };

/** What the control socket and triggers (watch, fetcher, release) drive. */
export interface MasterHandle {
  status(): StatusSnapshot;
  /** Queue a reload; resolves with its outcome (coalesced requests share one). */
  reload(reason: string): Promise<ReloadOutcome>;
  /** Graceful stop of everything; `force` SIGKILLs workers at once. */
  stop(force?: boolean): Promise<void>;
  on(event: 'event', listener: (e: MasterEvent) => void): unknown;
  off(event: 'event', listener: (e: MasterEvent) => void): unknown;
}
