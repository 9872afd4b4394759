/**
 * A master upgrade, the new master's side (the old side is upgrade.ts). This `hitless
 * start` was started by a running master with HITLESS_UPGRADE set, the sockets at fds 3, …
 * and an IPC channel to it: it reads what the old master hands on (`upgrade-state`: what
 * each socket is, the generation counter, the reload counters and last reload, a `hitless
 * scale` override), starts its first generation on those sockets, and tells the old
 * master how that went. Told to commit, it takes control.sock and the pid file; told to
 * take over, it starts its triggers, metrics and systemd notices, and runs the reload the
 * old master held for it (a SIGHUP during the upgrade; also one held until `upgrade-done`),
 * with the request counts it took in meanwhile; meanwhile it passes each
 * connection the old master sends on to the worker named, and answers whether it landed.
 *
 * If the old master goes away before the commit (killed, OOM, a crash: h21 F4), this master
 * is the only one left, holding every listening socket: it takes control.sock and the pid
 * file at once, as at a commit (SuccessorDeps.adopt), and serves once its first generation
 * is ready; the old master's workers, orphaned, drain on their own. After the commit it
 * simply serves on.
 */
import { HitlessError, isHitlessError } from '../errors.js';
import type { MasterEvent, ReleaseTraffic, ReloadRequestCounts } from '../core/types.js';
import type { Worker } from '../core/worker.js';
import { closeHandle, connMessage } from '../lib/protocol.js';
import {
  parsePeerMessage, UPGRADE_ENV, UPGRADE_PROTOCOL, type HandedOn, type NewMasterMessage, type OldMasterMessage,
} from './peer-protocol.js';

/** How long a new master waits for the old one's `upgrade-state` (it is sent right after the spawn). */
export const STATE_TIMEOUT_MS = 30_000;

export type StateMessage = Extract<OldMasterMessage, { type: 'upgrade-state' }>;
export type TakeoverMessage = Extract<OldMasterMessage, { type: 'upgrade-takeover' }>;

/** The channel to the old master: this process's IPC channel to its parent. */
export interface OldMasterChannel {
  /** False once the old master is gone. */
  readonly connected: boolean;
  send(message: NewMasterMessage): Promise<boolean>;
  on(event: 'message', fn: (raw: unknown, handle: unknown) => void): unknown;
  on(event: 'disconnect', fn: () => void): unknown;
  off(event: 'message', fn: (raw: unknown, handle: unknown) => void): unknown;
  off(event: 'disconnect', fn: () => void): unknown;
}

/** This process's IPC channel to its parent, unref'd (it never keeps the master alive); undefined without one. */
export function parentChannel(proc: NodeJS.Process = process): OldMasterChannel | undefined {
  const send = proc.send?.bind(proc);
  if (send === undefined) return undefined;
  const channel: OldMasterChannel = {
    get connected() {
      return proc.connected;
    },
    send: (message) => new Promise((resolve) => {
      try {
        send(message, undefined, {}, (err: Error | null) => resolve(err == null));
      } catch {
        resolve(false);
      }
    }),
    on: (event: string, fn: (...args: never[]) => void) => proc.on(event, fn as (...args: unknown[]) => void),
    off: (event: string, fn: (...args: never[]) => void) => proc.off(event, fn as (...args: unknown[]) => void),
  };
  // The channel must not keep this master alive (it outlives the old master by design).
  proc.channel?.unref();
  return channel;
}

/**
 * Joins the upgrade this process was started for, if any: undefined for a plain `hitless
 * start`; else the channel and the old master's state. Removes HITLESS_UPGRADE and the
 * LISTEN_* variables from `env` (the sockets come described in the state).
 *
 * @throws HitlessError ERR_UPGRADE_FAILED when the old master is gone or speaks another version.
 * @example
 * const upgrade = await joinUpgrade(process.env); // { channel, state } in a new master
 */
export async function joinUpgrade(env: NodeJS.ProcessEnv, channel = parentChannel(), timeoutMs = STATE_TIMEOUT_MS): Promise<{ channel: OldMasterChannel; state: StateMessage } | undefined> {
  const version = env[UPGRADE_ENV];
  if (version === undefined) return undefined;
  for (const name of [UPGRADE_ENV, 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[name];
  if (!channel) {
    throw new HitlessError('ERR_UPGRADE_FAILED', `${UPGRADE_ENV} is set but this process has no channel to an old master (hitless sets it for the master it starts; do not set it by hand)`);
  }
  const state = await new Promise<StateMessage>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      channel.off('message', onMessage);
      channel.off('disconnect', onGone);
    };
    const onMessage = (raw: unknown, handle: unknown): void => {
      const m = parsePeerMessage(raw, 'old');
      if (m?.type !== 'upgrade-state') return void closeHandle(handle);
      done();
      resolve(m);
    };
    const onGone = (): void => {
      done();
      reject(new HitlessError('ERR_UPGRADE_FAILED', 'the old master went away before it handed anything over'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new HitlessError('ERR_UPGRADE_FAILED', `the old master sent nothing within ${timeoutMs} ms`));
    }, timeoutMs);
    channel.on('message', onMessage);
    channel.on('disconnect', onGone);
  });
  if (Number(version) !== UPGRADE_PROTOCOL || state.protocol !== UPGRADE_PROTOCOL) {
    const error = new HitlessError('ERR_UPGRADE_FAILED',
      `the old master speaks upgrade protocol ${state.protocol}, this hitless ${UPGRADE_PROTOCOL}; upgrade through \`hitless stop\` and \`hitless start\``);
    await channel.send({ hitless: 1, type: 'upgrade-failed', error: { code: error.code, message: error.message, output: [] } });
    throw error;
  }
  return { channel, state };
}

/**
 * Tells the old master this new master could not start, and why (code, message, the
 * workers' last output lines): it then stops this one and serves on.
 *
 * @example
 * await tellOldMaster(upgrade.channel, err);
 */
export async function tellOldMaster(channel: OldMasterChannel, err: unknown): Promise<void> {
  const e = isHitlessError(err) ? err : new HitlessError('ERR_UPGRADE_FAILED', String(err));
  const output = Array.isArray(e.details.output) ? (e.details.output as string[]) : [];
  await channel.send({ hitless: 1, type: 'upgrade-failed', error: { code: e.code, message: e.message, output } });
}

/** What the successor needs from this master. */
export interface SuccessorDeps {
  /** The serving generation's live workers. */
  workers(): Worker[];
  /** The master's events (worker exits are passed on). */
  on(event: 'event', fn: (e: MasterEvent) => void): unknown;
  /** Adds the old master's traffic totals (Supervisor.addReleaseTotals). */
  addReleaseTotals(releases: ReleaseTraffic[]): void;
  /** Adds the old master's reload request counts since its state (Supervisor.addReloadRequests). */
  addReloadRequests(counts: Partial<ReloadRequestCounts>): void;
  /** Runs one reload for the requests the old master held during the upgrade (a SIGHUP each). */
  runHeldReloads(reasons: string[]): void;
  /**
   * The old master went away before the commit: take the service as a commit would
   * (control.sock, the pid file) once it is surely gone. Called once, at once (the first
   * generation may still be starting); rejects when it cannot, or when the old master still
   * runs (its channel closed, not the process): then this master stops.
   */
  adopt(): Promise<void>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (v: T) => void = () => {};
  let reject: (e: Error) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * The new master's conversation with the old one, after the state was received.
 *
 * @example
 * const successor = new Successor(upgrade.channel, deps);
 * await successor.ready(generation, version);
 * await successor.commit(() => { control.claim(); writePidFile(path); });
 * const { metrics } = await successor.takeover();
 */
export class Successor {
  readonly #channel: OldMasterChannel;
  readonly #deps: SuccessorDeps;
  /** The workers reported as receivers, by `<generation>.<slot>`. */
  readonly #reported = new Map<string, Worker>();
  /** How the service becomes this master's: the old master's commit, or its death before one. */
  readonly #commit = deferred<'commit' | 'orphaned'>();
  readonly #takeover = deferred<TakeoverMessage>();
  readonly #done = deferred<void>();
  #gone = false;
  #committed = false;
  /** SuccessorDeps.adopt's run, once the old master went away before the commit. */
  #adoption: Promise<void> | undefined;

  constructor(channel: OldMasterChannel, deps: SuccessorDeps) {
    this.#channel = channel;
    this.#deps = deps;
    const onGone = (): void => {
      if (this.#gone) return;
      this.#gone = true;
      if (!this.#committed) {
        this.#adoption = deps.adopt();
        this.#adoption.catch(() => {});
        this.#commit.resolve('orphaned');
      }
      this.#takeover.reject(new HitlessError('ERR_UPGRADE_FAILED', 'the old master went away before it handed the service over'));
      this.#done.resolve();
    };
    channel.on('message', (raw, handle) => this.#onMessage(raw, handle));
    channel.on('disconnect', onGone);
    if (!channel.connected) onGone();
    deps.on('event', (e) => {
      if (e.type !== 'worker-exit') return;
      const id = `${e.generation}.${e.slot}`;
      const w = this.#reported.get(id);
      if (w?.pid !== e.pid) return;
      this.#reported.delete(id);
      void this.#send({ hitless: 1, type: 'upgrade-worker-exit', id, pid: e.pid ?? 0, crashed: !e.planned });
    });
  }

  /** True once the old master went away before the commit: this master took the service itself (SuccessorDeps.adopt). */
  get orphaned(): boolean {
    return this.#adoption !== undefined;
  }

  /** Resolves once the old master said the upgrade is over (or went away). */
  get finished(): Promise<void> {
    return this.#done.promise;
  }

  /** The first generation serves: tells the old master, with the workers that take connections. */
  async ready(generation: number, version: string): Promise<void> {
    const workers = this.#deps.workers().filter((w) => w.acceptsConnections && w.pid !== undefined);
    for (const w of workers) this.#reported.set(`${w.generation}.${w.slot}`, w);
    await this.#send({
      hitless: 1, type: 'upgrade-ready', pid: process.pid, version, node: process.version, generation,
      workers: workers.map((w) => ({ id: `${w.generation}.${w.slot}`, pid: w.pid as number, listeners: w.hello?.listeners ?? [] })),
    });
  }

  /** It could not start: tells the old master why (it then stops this master). */
  async failed(err: unknown): Promise<void> {
    if (!this.#gone) await tellOldMaster(this.#channel, err);
  }

  /**
   * Waits for the old master's commit, runs `claim` (control.sock, the pid file) and says
   * so. When the old master goes away first, waits for SuccessorDeps.adopt instead (which
   * claims them itself), and rejects as it does. Rejects when `claim` throws (the old master
   * is told, and stops this one).
   */
  async commit(claim: () => void): Promise<void> {
    if ((await this.#commit.promise) === 'orphaned') return this.#adoption;
    try {
      claim();
    } catch (err) {
      await this.failed(new HitlessError('ERR_UPGRADE_FAILED', `could not take over: ${err instanceof Error ? err.message : String(err)}`));
      throw err;
    }
    await this.#send({ hitless: 1, type: 'upgrade-committed' });
  }

  /**
   * The whole conversation once the first generation serves: ready, then the commit (running
   * `claim`), then the takeover, whose message `start` gets (undefined when the old master
   * went away after the commit or before it: this master serves on, its counters from zero).
   * Rejects when the old master failed this one, or when it went away before the commit and
   * the adoption failed.
   *
   * @example
   * await successor.takeOver(generation, version, () => control.claim(), (t) => parts.startTriggers(config, t?.metrics));
   */
  async takeOver(generation: number, version: string, claim: () => void, start: (takeover: TakeoverMessage | undefined) => Promise<void>): Promise<void> {
    await this.ready(generation, version);
    await this.commit(claim);
    await start(await this.takeover().catch(() => undefined));
  }

  /** Resolves with the takeover (the old master's traffic totals already added, its metrics counters to start from). */
  takeover(): Promise<TakeoverMessage> {
    return this.#takeover.promise;
  }

  #send(message: NewMasterMessage): Promise<boolean> {
    return this.#gone ? Promise.resolve(false) : this.#channel.send(message);
  }

  #onMessage(raw: unknown, handle: unknown): void {
    const m = parsePeerMessage(raw, 'old');
    if (m?.type !== 'upgrade-conn' && handle != null) closeHandle(handle);
    switch (m?.type) {
      case 'upgrade-commit':
        this.#committed = true;
        return this.#commit.resolve('commit');
      case 'upgrade-takeover':
        this.#deps.addReleaseTotals(m.releases);
        this.#takeOn(m);
        return this.#takeover.resolve(m);
      case 'upgrade-conn':
        return void this.#deliver(m, handle);
      case 'upgrade-done':
        this.#deps.addReleaseTotals(m.releases);
        this.#takeOn(m);
        return this.#done.resolve();
      default:
        return undefined;
    }
  }

  /** The old master's request counts since its state, and the reloads it held for this master (run now: the service is this master's). */
  #takeOn(m: HandedOn): void {
    if (m.reloadRequests) this.#deps.addReloadRequests(m.reloadRequests);
    if (m.reloads?.length) this.#deps.runHeldReloads(m.reloads);
  }

  /** One connection from an old worker: to the worker named, if it still takes it; this copy closes either way. */
  async #deliver(m: Extract<OldMasterMessage, { type: 'upgrade-conn' }>, handle: unknown): Promise<void> {
    const w = this.#reported.get(m.worker);
    const ok = handle != null && w !== undefined && w.pid === m.pid && w.takes(m.listener)
      ? await w.deliver(connMessage(m.listener), handle)
      : false;
    closeHandle(handle);
    await this.#send({ hitless: 1, type: 'upgrade-landed', id: m.id, ok });
  }
}
