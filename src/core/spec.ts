/**
 * A generation's spec: everything about how its workers run, snapshotted when the
 * generation is created, so a reload can run a different spec (an edited hitless.json)
 * than the generation it replaces, and a generation never changes under its workers.
 */
import type { CanaryConfig, DrainConfig, MasterConfig, RestartPolicy, StrategyName } from '../config/types.js';
import { DEFAULT_STAY_READY_MS } from '../config/defaults.js';
import { DRAIN_SPREAD_ENV, DRAIN_TIMEOUT_ENV, SD_LISTEN_FDS_START } from '../lib/defaults.js';
import { CHANNEL_ENV, PROTOCOL } from '../lib/protocol.js';
import type { BootPriority } from './priority.js';
import { resolveWorkdir } from './workdir.js';

/** Node's on-disk compile cache folder variable (Node >= 22.1; older versions ignore it). */
export const COMPILE_CACHE_ENV = 'NODE_COMPILE_CACHE';

export interface GenerationSpec {
  /** The effective configuration this spec was made from (what a reload compares an edited file with). */
  config: MasterConfig;
  command: string[];
  /** Working directory, pinned: the release folder `current` pointed to at creation. */
  cwd: string;
  release: string | undefined;
  /** The complete worker environment before the per-worker LISTEN_* and HITLESS_* variables. */
  env: Record<string, string | undefined>;
  workers: number;
  readyTimeout: number;
  drainTimeout: number;
  /** How long (ms) its workers must have been ready before the reload that starts it is done (config `stayReady`; 0: no wait). */
  stayReady: number;
  stopSignal: NodeJS.Signals;
  readyAfter: number | null;
  restart: RestartPolicy;
  strategy: StrategyName;
  /** The canary strategy's settings (also for a one-off `hitless reload --canary`). */
  canary: CanaryConfig;
  /** Hand keep-alive connections to the next generation instead of closing them. */
  handover: boolean;
  /** How its workers close long-lived connections, and how long a reload waits for them (config `drain`). */
  drain: DrainConfig;
  uid: number | undefined;
  gid: number | undefined;
  /** Give workers a parent-death signal (setpriv present). */
  pdeathsig: boolean;
  /** Listening sockets (fds 3, 4, …) and their names, in config order. */
  fds: number[];
  fdNames: string[];
  /** Their addresses as status shows them ("127.0.0.1:3000"), for messages (optional: unit tests). */
  fdAddresses?: string[] | undefined;
  /**
   * Nice values a worker boots at (while another generation serves) and serves at from
   * READY on (priority.ts); undefined: started at the master's own priority.
   */
  bootPriority?: BootPriority | undefined;
  /** For how long (ms) the hand-over from its predecessors is paced (`handoverSpread`; default DEFAULT_HANDOVER_SPREAD_MS). */
  handoverSpread?: number;
  /** How many workers of it boot at once while another generation serves (`bootConcurrency`; default: no limit). */
  bootConcurrency?: number;
  /** Paths requested from each new worker after READY, before a reload switches to it (warm-up). */
  warmup?: string[];
  /** How many times they are requested (default 1). */
  warmupRounds?: number;
}

/** What the master adds to a config: the OS facts a spec needs. */
export interface SpecContext {
  fds: number[];
  fdNames: string[];
  fdAddresses?: string[];
  pdeathsig: boolean;
  uid?: number | undefined;
  gid?: number | undefined;
  /** Extra environment (HOME/USER after a privilege drop). */
  env?: Record<string, string>;
  /** The master's own environment (process.env). */
  baseEnv: Record<string, string | undefined>;
  /** Nice values of a booting and a serving worker, where the master may restore them (priority.ts). */
  bootPriority?: BootPriority | undefined;
  /** Node's compile cache folder for workers (NODE_COMPILE_CACHE), unless the environment names one already. */
  compileCache?: string | undefined;
  /** CPUs this process may use (os.availableParallelism()): what `bootConcurrency: "auto"` halves. */
  cpus?: number;
}

/**
 * Workers booting at once for `setting` ("auto": half of `cpus`, at least 1; unknown CPUs
 * or no setting: no limit).
 *
 * @example
 * bootConcurrency('auto', 2); // 1
 * bootConcurrency('auto', 8); // 4
 * bootConcurrency(3, 8);      // 3
 */
export function bootConcurrency(setting: number | 'auto' | undefined, cpus: number | undefined): number {
  if (typeof setting === 'number') return setting;
  if (setting === 'auto' && cpus !== undefined && cpus > 0) return Math.max(1, Math.floor(cpus / 2));
  return Number.POSITIVE_INFINITY;
}

/**
 * Snapshots `config` for a new generation; resolves `current` now (see workdir.ts).
 *
 * @example
 * const spec = specFromConfig(config, { fds: [10], fdNames: ['http'], pdeathsig: true, baseEnv: process.env });
 */
export function specFromConfig(config: MasterConfig, ctx: SpecContext, workers = config.workers): GenerationSpec {
  const { cwd, release } = resolveWorkdir(config);
  const env = { ...ctx.baseEnv, ...ctx.env, ...config.env };
  // A folder the user chose (in the master's environment or the config's env) wins.
  if (ctx.compileCache !== undefined && env[COMPILE_CACHE_ENV] === undefined) env[COMPILE_CACHE_ENV] = ctx.compileCache;
  return {
    config,
    command: [...config.command],
    cwd,
    release,
    env,
    workers,
    readyTimeout: config.readyTimeout,
    drainTimeout: config.drainTimeout,
    stayReady: config.stayReady ?? DEFAULT_STAY_READY_MS,
    stopSignal: config.stopSignal,
    readyAfter: config.readyAfter,
    restart: { ...config.restart },
    strategy: config.strategy,
    canary: { ...config.canary },
    handover: config.handover,
    drain: { ...config.drain },
    uid: ctx.uid,
    gid: ctx.gid,
    pdeathsig: ctx.pdeathsig,
    fds: [...ctx.fds],
    fdNames: [...ctx.fdNames],
    ...(ctx.fdAddresses ? { fdAddresses: [...ctx.fdAddresses] } : {}),
    bootPriority: ctx.bootPriority,
    bootConcurrency: bootConcurrency(config.bootConcurrency, ctx.cpus),
    ...(config.handoverSpread === undefined ? {} : { handoverSpread: config.handoverSpread }),
    warmup: [...(config.warmup ?? [])],
    warmupRounds: config.warmupRounds ?? 1,
  };
}

/**
 * The environment a worker of `spec` gets (the worker contract, DESIGN.md): the spec's, plus
 * where its sockets, readiness socket and channel are and who it is.
 *
 * @example
 * workerEnv(spec, 7, 0, process.pid); // { …spec.env, LISTEN_FDS: '1', LISTEN_FDNAMES: 'http', HITLESS_READY_FD: '4', … }
 */
export function workerEnv(spec: GenerationSpec, generation: number, slot: number, masterPid: number): Record<string, string | undefined> {
  const readyFd = SD_LISTEN_FDS_START + spec.fds.length;
  const env: Record<string, string | undefined> = {
    ...spec.env,
    LISTEN_FDS: String(spec.fds.length),
    LISTEN_FDNAMES: spec.fdNames.join(':'),
    HITLESS_READY_FD: String(readyFd),
    // Node's IPC channel sits right after the readiness socket (NODE_CHANNEL_FD says so too).
    [CHANNEL_ENV]: String(PROTOCOL),
    HITLESS_GENERATION: String(generation),
    HITLESS_WORKER: String(slot),
    HITLESS_STOP_SIGNAL: spec.stopSignal,
    HITLESS_MASTER_PID: String(masterPid),
    HITLESS_RELEASE: spec.release,
    // How the worker's drain spreads the closes of its upgraded connections (ms).
    [DRAIN_SPREAD_ENV]: String(spec.drain.spread),
    // The worker's own drain deadline follows it (the library's drainDeadline()).
    [DRAIN_TIMEOUT_ENV]: String(spec.drainTimeout),
  };
  if (spec.fds.length === 0) delete env.LISTEN_FDS;
  return env;
}
