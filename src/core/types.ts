/**
 * Types of the supervisor's reports: the status snapshot and reload outcome (what the
 * control socket carries), and the master's events (what logs and metrics consume).
 */
import type { ConfigChange, StrategyName } from '../config/types.js';
import type { StatusClass } from '../lib/protocol.js';

/** The phases of a reload, in order (reload.ts holds the transitions allowed between them). */
export type ReloadPhase = 'spawning' | 'canary' | 'ready' | 'switched' | 'handover' | 'draining' | 'settling' | 'done' | 'failed';

/** Responses by status class. */
export type ClassCounts = Record<StatusClass, number>;

/** Figures over the window (and totals) of a worker or a generation. */
export interface TrafficFigures {
  /** The span the window figures cover, ms (up to TRAFFIC_WINDOW_MS; shorter for a young worker). */
  windowMs: number;
  /** Responses in the window, and per second. */
  requests: number;
  rps: number;
  /** 5xx responses in the window and their share of `requests` (undefined without responses). */
  errors: number;
  errorRate: number | undefined;
  /** Latency quantiles in the window, ms, interpolated within histogram buckets. */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  /** Responses by status class since the worker (or generation) started. */
  total: ClassCounts;
  /** Connections open at the last report (handed-over ones included); absent when the workers do not report it. */
  connections?: number;
}

/** One side's figures over the canary window. */
export interface SideFigures {
  requests: number;
  /** 5xx responses. */
  errors: number;
  errorRate: number | undefined;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
}


/** `restarting`: a crashed worker's slot waiting out its restart backoff (no process; `restartAt` says until when). */
export type WorkerState = 'starting' | 'ready' | 'draining' | 'exited' | 'failed' | 'restarting';

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
  /** What the worker reported on the channel (`stats`), over the last 10 s; absent until it reports. */
  traffic?: TrafficFigures;
  /** State `restarting`: when the slot's next worker starts (ms since the epoch, the master's clock). */
  restartAt?: number;
}

/** One generation's traffic (its workers merged, exited ones included while in the window). */
export interface GenerationTraffic {
  generation: number;
  release: string | undefined;
  /** True for the generation serving (a canary is not serving yet). */
  serving: boolean;
  /** Its live workers. */
  workers: number;
  figures: TrafficFigures;
}

/** Cumulative totals of one release (its generations merged): what Prometheus exposes. */
export interface ReleaseTraffic {
  /** The release id, or `gen-<n>` when the app has no releases/ layout. */
  release: string;
  requests: ClassCounts;
  /** Latency histogram over LATENCY_BOUNDS_MS (src/lib/stats.ts) plus an overflow bucket. */
  latency: number[];
  latencySumMs: number;
}

/** A canary's running comparison (progress) or its decision (verdict). docs/canary.md. */
export interface CanaryReport {
  generation: number;
  verdict: 'pending' | 'pass' | 'fail' | 'inconclusive';
  /** One line: the figures and, for a decision, why. */
  reason: string;
  /** Since the canary workers were ready, and the configured duration. */
  elapsedMs: number;
  durationMs: number;
  /** The part of the duration whose latency is not judged (canary.warmup, at most half the duration). */
  warmupMs?: number;
  /** The canary workers' and the serving generation's figures over the same window. */
  canary: SideFigures;
  baseline: SideFigures;
  latencyLimitMs: number | undefined;
  /** The canary's connections: what the split moved to it, and what it holds (absent when nothing was split). */
  connections?: CanaryConnections;
}

/**
 * The canary's share of kept-alive connections (issue 18, src/core/split.ts): the serving
 * workers hand it part of theirs while it is judged.
 */
export interface CanaryConnections {
  /** What each serving worker was asked for: a share of its connections, or (`count`) a number in all. */
  share?: number;
  count?: number;
  /** Connections moved to the canary so far (and kept there), given back to the serving worker that sent them (no canary could take them), lost (a canary worker died holding them). */
  moved: number;
  returned: number;
  lost: number;
  /** Connections the canary workers had open at their last report, moved and new ones (absent when they do not report it). */
  held?: number;
  /** Times a starved canary was lent one more connection (absent when never; strategies/canary.ts). */
  lends?: number;
}

/** A starved canary lent one more connection (the `canary-lend` event). */
export interface CanaryLend {
  type: 'canary-lend';
  generation: number;
  from: number;
  slot: number;
  canary: number;
  serving: number;
  ms: number;
}

/** An old generation still draining (status): its live workers and what they hold. */
export interface DrainingGeneration {
  generation: number;
  /** True once no reload waits for it any more: it drains in the background (docs/websockets.md). */
  background: boolean;
  /** When its drain began, and when what is left is SIGKILLed (ms since the epoch). */
  since: number;
  deadline: number;
  /**
   * Its live workers; `upgraded`: the upgraded connections each said it still holds (undefined:
   * not said); until then `requests` and `connections`: what its last traffic report had in
   * flight and open (absent: it sends none).
   */
  workers: { slot: number; pid: number | undefined; upgraded: number | undefined; requests?: number | undefined; connections?: number | undefined }[];
  /** Upgraded connections its workers said they hold, summed. */
  upgraded: number;
  /** Requests in flight and connections open, summed over its workers that still serve HTTP and report them. */
  requests: number;
  connections: number;
  /** Workers that have not said what they hold (programs without the in-app library or the preload). */
  unknown: number;
  /** Set (`drain.reloadWait`, ms) when it went to the background because that bound passed, while its workers still had more than upgraded connections (or could not say). */
  reloadWait?: number;
}

export interface ListenerStatus {
  name: string;
  address: string;
  fd: number;
  /** Set when the socket came from systemd (LISTEN_FDS given to the master). */
  inherited: boolean;
  /**
   * Where a socket from systemd is bound ("127.0.0.1:8080", "unix:/run/app.sock"), as the
   * master read it at start; undefined when it could not tell (`address` is then "fd:3"),
   * and for the sockets the master bound (`address` is where).
   */
  boundTo?: string | undefined;
}

/**
 * What became of retired workers' connections: handed over (to the receiving workers),
 * returned to their worker and drained there (no receiver could take them), lost (neither
 * side alive), closed gracefully by the drain, or cut at a deadline (the worker's own, or
 * drainTimeout's SIGKILL); WebSockets
 * moved by hitless/ws.
 */
export interface ConnectionCounts {
  handedOver: number;
  returned: number;
  lost: number;
  drained: number;
  cut: number;
  webSockets?: number;
  /** Of `drained`: WebSockets the old workers closed (1001) instead of moving them (a `hitless upgrade`, or no hitless/ws). */
  webSocketsClosed?: number;
}

/**
 * Reload requests by what became of them: began at once, queued behind another, merged into
 * the queued one, or refused before anything ran (a configuration that does not validate, a
 * master stopping or upgrading).
 */
export interface ReloadRequestCounts {
  started: number;
  queued: number;
  merged: number;
  refused: number;
}

/** The counts as a master reports them (its status, or its state at an upgrade): one from before `refused` has none. */
export type ReportedReloadRequestCounts = Omit<ReloadRequestCounts, 'refused'> & Partial<Pick<ReloadRequestCounts, 'refused'>>;

export interface ReloadOutcome {
  ok: boolean;
  /** The generation now serving. */
  generation: number;
  /** The generation that was tried (equal to `generation` on success). */
  attempted: number;
  reason: string;
  startedAt: number;
  durationMs: number;
  /** Old workers SIGKILLed at drainTimeout. */
  forced: number;
  /**
   * What became of the connections of the workers this reload retired: on success the old
   * generation's, handed over to the new generation, returned to the old worker and drained
   * there (no new worker could take them), lost (neither side alive), closed gracefully by
   * the old workers' drain, or cut at their deadline. On a failure after a canary served,
   * the canary's: handed back to the generation that keeps serving, and so on.
   */
  connections?: ConnectionCounts;
  /**
   * What the old generation still held when the reload was declared done (absent: nothing,
   * it had drained): workers alive, and the upgraded connections they said they hold. Their
   * final counts come later, in the generation's `reload-drained` event; `connections` and
   * `forced` above count only what had ended by then.
   */
  stillDraining?: { workers: number; upgraded: number };
  /** On failure: error code, message and the failed workers' last output lines. */
  /** `problems`: every problem of an invalid configuration (ERR_CONFIG_INVALID), always there for that code (the message alone when there is one). */
  error?: { code: string; message: string; output: string[]; problems?: string[] };
  /** True when this request joined a reload already queued. */
  coalesced?: boolean;
  /**
   * What the re-read configuration changes, against what was serving when the reload began
   * (a queued reload: once the one before it ended, not when it was asked for; empty: no
   * configuration change). Absent when the master does not re-read its configuration (a
   * master run programmatically, without a `hitless start` command line), and for a queued
   * reload refused before it began (the master stopping).
   */
  changes?: ConfigChange[];
  /** Remarks about how the configuration was applied (a `hitless scale` override kept or ended). */
  notes?: string[];
  /** The canary's decision with both sets of figures (strategy "canary"). */
  canary?: CanaryReport;
  /**
   * A new worker died after the new generation went live, before the reload was done: the
   * generation `generation` that started generation `version`'s version again, and whether it
   * went live (`ok`; false: the failed generation still serves, its crashed slots restarted,
   * and `error` says why the rollback failed, with its workers' last output lines).
   */
  rollback?: { generation: number; version: number; ok: boolean; error?: { code: string; message: string; output: string[] } };
  /**
   * Things to check about the generation that went live (listening.ts: sockets hitless cannot
   * tell are served), and held sockets found shut down by a worker during this reload
   * (src/master/listener-watch.ts).
   */
  warnings?: string[];
}

/** What `hitless scale` reports. */
export interface ScaleOutcome {
  ok: boolean;
  /** The serving generation (scale never starts a new one). */
  generation: number;
  from: number;
  to: number;
  startedAt: number;
  durationMs: number;
  /** Extra workers SIGKILLed at drainTimeout when scaling down. */
  forced: number;
  /**
   * What moved: scaling down, the removed workers' connections (handed over to the workers
   * that stay, unless `handover` is off); scaling up, the share of the serving workers'
   * kept-alive connections handed to the new ones. Absent when none moved.
   */
  connections?: ConnectionCounts;
  /** On failure: the serving generation keeps `from` workers. */
  error?: { code: string; message: string; output: string[] };
}

/** The phases of a master upgrade as the old master runs it (src/master/upgrade.ts), in order. */
export type UpgradePhase = 'spawning' | 'starting' | 'ready' | 'committed' | 'handover' | 'failed';

/** What `hitless upgrade` (or SIGUSR2) reports: the old master's account of the upgrade. */
export interface UpgradeOutcome {
  ok: boolean;
  /** The master serving now: the new one when ok, else this one. */
  pid: number;
  /** Its hitless version. */
  version: string;
  /** Its Node version (`process.version`, like `v24.1.0`); absent when a new master of an older hitless did not say it. */
  node?: string;
  /** The generation serving now (the new master's first when ok). */
  generation: number;
  /** The master that ran the upgrade (`node`: its Node version). */
  from: { pid: number; version: string; node?: string };
  /** The new master, as far as it got: the path run, its pid once spawned, its hitless and Node versions once it said. */
  to?: { exec: string; pid?: number; version?: string; node?: string };
  /**
   * The new master runs the very copy of hitless the old one ran (the path it was started
   * from still names it), while the app folder has another version installed (`version`):
   * the upgrade did not run that one; `exec` does (`hitless upgrade --exec <exec>`).
   */
  notRun?: { version: string; exec: string };
  reason: string;
  startedAt: number;
  durationMs: number;
  /** Old workers SIGKILLed at drainTimeout (those of `background` included). */
  forced: number;
  /**
   * SIGHUPs the old master passed on to the new one once its workers' connections were
   * handed over (those held from earlier as one): the new master reloaded after the upgrade's
   * `generation`, which may no longer serve.
   */
  reloadsPassedOn?: number;
  /**
   * What became of the old workers' connections (as for a reload; handed over = to the new
   * master's workers); `drained` and `cut` include what the `background` generations drained and cut.
   */
  connections?: Omit<ConnectionCounts, 'webSockets'>;
  /**
   * The old generations that were draining in the background when the hand-over began: the
   * old master waited for them too (each until its drainTimeout at the latest). What they
   * drained, cut and had SIGKILLed after their own reload was done (and counted none of it).
   */
  background?: { generations: number[]; forced: number; drained: number; cut: number; webSocketsClosed?: number };
  /** On failure or refusal: the code, message and the new master's last output lines when known. */
  error?: { code: string; message: string; output: string[] };
}

/** `hitless upgrade`'s choices. */
export interface UpgradeOptions {
  /** The hitless to run (default: the hitless installed now: the path this master was started from, resolved again, or for pnpm and Yarn PnP the one the app folder has; docs/CLI.md). */
  exec?: string;
  /** What asked for it (log and outcome): `hitless upgrade`, `SIGUSR2`. */
  reason?: string;
}

/** Per-reload choices of the caller (`hitless reload --canary`). */
/** What a reload's configuration changes, and remarks on how it is applied (`reload-config`). */
export interface ReloadConfigDiff {
  changes: ConfigChange[];
  notes: string[];
}

export interface ReloadOptions {
  /** This reload's strategy instead of the configured one. */
  strategy?: StrategyName;
  /**
   * Receives this request's own events only (src/core/follow.ts): its `reload-queued`, then
   * the events of the reload it started or joined: its `reload-config` (as it begins), then
   * from its `reload-start` to its `reload-done` (not the reload before or after it, nor an earlier
   * reload's background drain). Not sent over the control socket: the server sets it.
   */
  follow?: (e: MasterEvent) => void;
  /**
   * During a master upgrade (`hitless upgrade`): true holds the request until the upgrade
   * ends, then the new master runs it (or this one, when the upgrade failed); default false:
   * refused (ERR_UPGRADE_BUSY), for a requester that can ask again. SIGHUP holds.
   */
  holdDuringUpgrade?: boolean;
}

export interface StatusSnapshot {
  version: string;
  /** The master's Node version (`process.version`): what a `hitless upgrade` onto another Node changes. */
  node?: string;
  pid: number;
  startedAt: number;
  uptimeMs: number;
  /** `reloading` lasts until the old generation has drained, not only until the switch. */
  state: 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped';
  generation: number;
  release: string | undefined;
  listeners: ListenerStatus[];
  workers: WorkerStatus[];
  lastReload: ReloadOutcome | undefined;
  reloadQueued: boolean;
  /** The queued reload: every request merged into it (their reasons, oldest first) and since when it waits. */
  queuedReload?: { reasons: string[]; since: number };
  /**
   * Reload requests since the master started, by what became of them: `started` at once,
   * `queued` behind a reload (or scale) in progress, `merged` into a reload already queued.
   * None is ever dropped (docs/CLI.md, the signals under "hitless start").
   */
  reloadRequests?: ReportedReloadRequestCounts;
  /** Old generations still draining, oldest first (those in the background: docs/websockets.md). */
  draining?: DrainingGeneration[];
  /** The reload in flight, with its phase (reload.ts). */
  reload?: { generation: number; phase: ReloadPhase; reason: string; startedAt: number } | undefined;
  /** The master's own memory: resident set and V8 heap in use, in bytes. */
  memory?: { rssBytes: number; heapUsedBytes: number };
  /**
   * Which app this master runs: its folder, its config file (undefined: flags only) and its
   * run dir. Added by the master (src/master/master.ts), not the supervisor; `hitless list`
   * shows it.
   */
  app?: { dir: string; configPath: string | undefined; runDir: string };
  /**
   * The address the master's metrics endpoint serves (metrics.listen, bound), when it runs.
   * Added by the master; another master's `metrics.listen` bind error names this one by it.
   */
  metrics?: string;
  /**
   * Things to check about the serving generation (listening.ts), as the last reload or the
   * start reported them; then every held socket found shut down by a worker since the master
   * started (the latest per socket; src/master/listener-watch.ts).
   */
  warnings?: string[];
  /** Traffic the workers reported: per generation over the last `windowMs`, and per release since it started. */
  traffic?: { windowMs: number; generations: GenerationTraffic[]; releases: ReleaseTraffic[] };
  /** The master upgrade this master is running (it is the old one): phase, the new master's pid once spawned. */
  upgrade?: { phase: UpgradePhase; reason: string; pid: number | undefined; startedAt: number } | undefined;
  /** The last upgrade this master refused or that failed (a successful one ends this master). */
  lastUpgrade?: UpgradeOutcome | undefined;
  /** The master this one took over from by an upgrade (`node`: its Node version). */
  upgradedFrom?: { pid: number; version: string; node?: string; at: number } | undefined;
}

/** A warm-up path's responses (src/core/warmup.ts): its status (the first 5xx, else the last), their median time, how many. */
export interface WarmupResponse {
  path: string;
  status: number;
  ms: number;
  count: number;
}

/** What the master reports as it works: consumed by the logger, metrics and live CLI feedback. */
export type MasterEvent =
  | { type: 'master-start'; pid: number; listeners: ListenerStatus[]; upgradedFrom?: { pid: number; version: string } }
  | { type: 'master-ready'; generation: number; ms: number }
  /** `forced`: workers SIGKILLed at drainTimeout during a graceful stop (their in-flight requests cut); absent: none. */
  | { type: 'master-stop'; reason: string; forced?: number }
  /** `nice`: the lower priority it boots at (beside a serving generation; src/core/priority.ts). */
  | { type: 'worker-spawn'; generation: number; slot: number; pid: number | undefined; nice?: number }
  /** `nice`: the priority it was given back at READY (when it booted lower). */
  | { type: 'worker-ready'; generation: number; slot: number; pid: number; ms: number; nice?: number }
  /**
   * A booting worker's priority could not be given back at READY (`error`): it serves at
   * `nice`, and later workers boot at the normal priority.
   */
  | { type: 'worker-priority'; generation: number; slot: number; pid: number | undefined; nice: number; error: string }
  /** A worker still booting at its boot priority after half its readyTimeout got the serving priority (`nice`) back. */
  | { type: 'worker-boot-priority'; generation: number; slot: number; pid: number | undefined; nice: number; afterMs: number }
  | { type: 'worker-status'; generation: number; slot: number; text: string }
  /**
   * A new worker's warm-up requests (src/core/warmup.ts): each path's status, median time and
   * count, all of them in `ms`; or `skipped`, and why (a worker without the channel). `nice`:
   * the priority it got back after the warm-up (it booted and warmed up lower).
   */
  | { type: 'worker-warmup'; generation: number; slot: number; pid: number | undefined; responses: WarmupResponse[]; ms: number; skipped?: string; nice?: number }
  /**
   * Workers of `generation` still not ready, every few seconds while they start (from
   * src/master/ready-wait.ts): each one's slot, pid, time since spawn and last STATUS= text.
   */
  | { type: 'ready-wait'; generation: number; waitingMs: number; workers: { slot: number; pid: number | undefined; ms: number; status?: string }[] }
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
  /**
   * A reload request that could not start at once: queued behind what runs (`behind`: a
   * reload of `generation`, a scale, the first generation's start, a master upgrade to the
   * new master `pid`), or `merged` into the reload already queued (which then runs once, for both).
   */
  | { type: 'reload-queued'; reason: string; merged: boolean; behind: 'reload' | 'scale' | 'rebalance' | 'start' | 'upgrade'; generation?: number; pid?: number }
  /** `workers`: how many workers the new generation will have (its progress reads ready k/workers). */
  | { type: 'reload-start'; generation: number; reason: string; workers: number }
  | { type: 'reload-ready'; generation: number; ms: number }
  /** Workers of `generation` retiring; `to`: the generation taking their connections (absent: drained only). */
  | { type: 'reload-draining'; generation: number; workers: number; to?: number }
  /** `settleMs` (phase `settling`): how long every new worker must have been ready, the reload's `stayReady`. */
  | { type: 'reload-phase'; generation: number; phase: ReloadPhase; settleMs?: number }
  | {
      type: 'reload-drained';
      generation: number;
      /** The generation that took the handed-over connections. */
      to?: number;
      forced: number;
      ms: number;
      handedOver?: number;
      returned?: number;
      lost?: number;
      drained?: number;
      /** Connections the old workers destroyed at their own shutdown deadline. */
      cut?: number;
      /** WebSockets handed over to the next generation (hitless/ws). */
      webSockets?: number;
      /** Of `drained`: WebSockets the old workers closed (1001) instead of moving them. */
      webSocketsClosed?: number;
      /** How long the handed-over connections spent in the master (read by nobody), ms. */
      transitMs?: { median: number; p99: number; max: number };
    }
  | { type: 'reload-done'; outcome: ReloadOutcome }
  /** A reload request refused before it began, with no reload-done (the master stopping or upgrading): a failed reload for the counters. */
  | { type: 'reload-refused'; reason: string; code: string }
  /**
   * A worker of `generation` died unasked after it went live, before the reload was done:
   * the reload fails, and `to` starts generation `version`'s version again (supervisor.ts).
   */
  | { type: 'reload-rollback'; generation: number; to: number; version: number; text: string }
  /**
   * The reload stopped waiting for an old generation's workers: they hold only upgraded
   * connections (or `drain.reloadWait` passed) and drain on in the background until
   * `deadline` (ms since the epoch); `reload-drained` follows when they are gone.
   */
  | {
    type: 'drain-background'; generation: number; workers: number; upgraded: number; deadline: number;
    /** What its workers still held besides (see DrainingGeneration), and why the reload stopped waiting (`reloadWait`, ms, when that bound passed). */
    requests?: number; connections?: number; unknown?: number; reloadWait?: number;
  }
  /** More than `drain.maxGenerations` generations would drain in the background: `generation`, the oldest, was stopped at once. */
  | { type: 'drain-limit'; generation: number; maxGenerations: number }
  /** The configuration a reload is about to run, compared with what serves (before `reload-start`). */
  | { type: 'reload-config'; reason: string; changes: ConfigChange[]; notes: string[] }
  /** Parts of the master restarted with new settings after a reload went live (logs, metrics, watch, fetch). */
  | { type: 'reconfigured'; parts: string[]; errors: string[] }
  /** Something to check about a generation that went live (listening.ts); logged as a warning. */
  | { type: 'warning'; generation: number; text: string }
  /**
   * A held socket that had stopped listening (a worker called shutdown(2) on it), found when a
   * worker exited (src/master/listener-watch.ts); `relistened`: it listens again. Logged as an error.
   */
  | { type: 'listener-stopped'; listener: string; address: string; fd: number; relistened: boolean; text: string }
  | { type: 'scale-start'; generation: number; from: number; to: number }
  /**
   * A scale-up's workers are ready: the serving ones hand them `share` of their kept-alive
   * connections. `restarted`: the slots of crash replacements that got ready, not a scale
   * (`restart-rebalanced` follows with what moved).
   */
  | { type: 'scale-rebalance'; generation: number; senders: number; receivers: number; share: number; restarted?: number[] }
  /** Crash replacements (`slots`) took their share of the serving workers' kept-alive connections, in `ms`. */
  | { type: 'restart-rebalanced'; generation: number; slots: number[]; ms: number; handedOver: number; returned: number; lost: number; drained: number; cut: number }
  | { type: 'scale-done'; outcome: ScaleOutcome }
  | ({ type: 'canary-progress' } & CanaryReport)
  | ({ type: 'canary-verdict' } & CanaryReport)
  /**
   * The canary answered `canary` responses to the serving generation's `serving` over the
   * last `ms`, too little of its share with nothing busy: worker `from`.`slot` lends it the
   * connection it used last (strategies/canary.ts).
   */
  | CanaryLend
  | { type: 'worker-output'; generation: number; slot: number; stream: 'stdout' | 'stderr'; line: string }
  /**
   * A master upgrade moved on (the old master reports it; `pid` is the new master's once
   * spawned). `draining`, at `handover`: the old generations still draining in the
   * background, which the old master waits for too before it exits (each until its deadline).
   */
  | { type: 'upgrade-phase'; phase: UpgradePhase; reason: string; pid?: number; version?: string; exec?: string; generation?: number; draining?: DrainingGeneration[] }
  | { type: 'upgrade-done'; outcome: UpgradeOutcome };

/** What the control socket and triggers (watch, fetcher, release) drive. */
export interface MasterHandle {
  status(): StatusSnapshot;
  /** Queue a reload; resolves with its outcome (coalesced requests share one). */
  reload(reason: string, options?: ReloadOptions): Promise<ReloadOutcome>;
  /** Change the serving generation's worker count without a reload (`hitless scale`). */
  scale?(workers: number): Promise<ScaleOutcome>;
  /**
   * Replace this master by the hitless installed now (`hitless upgrade`): resolves with the
   * outcome, once the old workers are gone (ok) or the new master was stopped (failed).
   */
  upgrade?(options: UpgradeOptions): Promise<UpgradeOutcome>;
  /** Graceful stop of everything; `force` SIGKILLs workers at once. */
  stop(force?: boolean): Promise<void>;
  on(event: 'event', listener: (e: MasterEvent) => void): unknown;
  off(event: 'event', listener: (e: MasterEvent) => void): unknown;
}

/** What a worker said about itself in its `hello` (src/lib/protocol.ts), as the master keeps it. */
export interface Hello {
  /** It can receive handed-over HTTP/1.1 connections. */
  handover: boolean;
  /** Names of the listeners it can receive handed-over connections for. */
  listeners: string[];
  /**
   * Names of every inherited socket it accepts on (undefined: it did not say, as a worker of
   * an older library or another language may not): a socket left out is unserved, and the
   * generation is refused at readiness (listening.ts).
   */
  adopted?: string[] | undefined;
  /** It hands a part of its connections over while it keeps serving, when asked (`move`). */
  moves?: boolean;
}
