/**
 * A generation's spec: everything about how its workers run, snapshotted when the
 * generation is created, so a reload can run a different spec (an edited hitless.json)
 * than the generation it replaces, and a generation never changes under its workers.
 */
import type { CanaryConfig, MasterConfig, RestartPolicy, StrategyName } from '../config/types.js';
import { resolveWorkdir } from './workdir.js';

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
  stopSignal: NodeJS.Signals;
  readyAfter: number | null;
  restart: RestartPolicy;
  strategy: StrategyName;
  /** The canary strategy's settings (also for a one-off `hitless reload --canary`). */
  canary: CanaryConfig;
  /** Hand keep-alive connections to the next generation instead of closing them. */
  handover: boolean;
  uid: number | undefined;
  gid: number | undefined;
  /** Give workers a parent-death signal (setpriv present). */
  pdeathsig: boolean;
  /** Listening sockets (fds 3, 4, …) and their names, in config order. */
  fds: number[];
  fdNames: string[];
  /** Their addresses as status shows them ("127.0.0.1:3000"), for messages (optional: unit tests). */
  fdAddresses?: string[] | undefined;
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
}

/**
 * Snapshots `config` for a new generation; resolves `current` now (see workdir.ts).
 *
 * @example
 * const spec = specFromConfig(config, { fds: [10], fdNames: ['http'], pdeathsig: true, baseEnv: process.env });
 */
export function specFromConfig(config: MasterConfig, ctx: SpecContext, workers = config.workers): GenerationSpec {
  const { cwd, release } = resolveWorkdir(config);
  return {
    config,
    command: [...config.command],
    cwd,
    release,
    env: { ...ctx.baseEnv, ...ctx.env, ...config.env },
    workers,
    readyTimeout: config.readyTimeout,
    drainTimeout: config.drainTimeout,
    stopSignal: config.stopSignal,
    readyAfter: config.readyAfter,
    restart: { ...config.restart },
    strategy: config.strategy,
    canary: { ...config.canary },
    handover: config.handover,
    uid: ctx.uid,
    gid: ctx.gid,
    pdeathsig: ctx.pdeathsig,
    fds: [...ctx.fds],
    fdNames: [...ctx.fdNames],
    ...(ctx.fdAddresses ? { fdAddresses: [...ctx.fdAddresses] } : {}),
  };
}
