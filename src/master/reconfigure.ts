/**
 * A reload applies the edited configuration (issue 11). Before every reload, whatever
 * triggered it (SIGHUP, `hitless reload`, the watch and fetch triggers, `hitless release`),
 * the master reads its configuration again exactly as `hitless start` did: the same file,
 * the same flags over it, validated in a short-lived `hitless check --json <start argv>`
 * child (reread.ts; skipped while the file's bytes stay those last validated, and always
 * for a master started with flags only, which ignores a hitless.json that appears later).
 *
 * Then, in order: a file that does not validate refuses the reload with the validator's
 * own message (the serving generation is untouched), and so does an empty `listen` on a
 * master systemd gave no socket (the rule `hitless start` applies); the `hitless scale` override is kept
 * or ends (see {@link Reconfigurer.scale}); keys a reload cannot apply keep their running value; the
 * workers' user/group is resolved; added listen addresses are bound (ERR_BIND refuses the
 * reload). Only then does the supervisor start the new generation from the new spec; as it
 * begins, the differences against what serves then are computed (changes.ts) and announced
 * (`reload-config`): a reload queued behind another shows what it changes after that one,
 * not what that one already applied (report h12 N3).
 * Afterwards, sockets no generation uses any more are closed, and when the new generation
 * went live the optional parts (logs, metrics, watch, fetch) are restarted if their
 * settings changed.
 */
import { diffConfig, RESTART_ONLY } from '../config/changes.js';
import { workerCount } from '../config/workers.js';
import net from 'node:net';
import { HitlessError } from '../errors.js';
import { parseMetricsListen } from '../config/metrics.js';
import { requireListenAddress } from '../config/listen.js';
import { prepareFolder } from '../config/output-file.js';
import { LOG_FILE_NAME } from '../ops/logfiles.js';
import { busyScale } from '../core/outcomes.js';
import type { Identities } from './identity.js';
import type { ListenerSet } from './listeners.js';
import { nameMetricsHolder } from './occupied.js';
import { cachedReader, type ConfigSource } from './reread.js';
import type { ConfigChange, ListenerSpec, MasterConfig } from '../config/types.js';
import type { MasterEvent, MasterHandle, ReloadConfigDiff, ReloadOptions, ReloadOutcome, ScaleOutcome, StatusSnapshot } from '../core/types.js';

export type { ConfigSource };

/**
 * What the reconfigure layer needs from the supervisor (the seams of issue 11). It reports
 * what it did through the supervisor, the one writer of events and of the last reload.
 */
export interface ReconfigurableMaster extends MasterHandle {
  /** The spec the serving generation runs. */
  readonly spec: MasterConfig;
  /**
   * Runs (or queues) a reload of `next`; `options.config` is called as it begins, and what
   * it returns is announced (`reload-config`) and put on the outcome (SupervisorReloadOptions.config).
   */
  reload(reason: string, next?: MasterConfig, options?: ReloadOptions & { config?: () => ReloadConfigDiff }): Promise<ReloadOutcome>;
  scale(workers: number): Promise<ScaleOutcome>;
  /** The host's clock, ms (Supervisor.now). */
  now(): number;
  /** `reload-config` (Supervisor.announceConfig). */
  announceConfig(reason: string, changes: ConfigChange[], notes: string[]): void;
  /** A reload refused before the supervisor ran it (Supervisor.refuseReload). */
  refuseReload(reason: string, startedAt: number, error: unknown, extra?: Pick<ReloadOutcome, 'changes' | 'notes'>): ReloadOutcome;
}

export interface ReconfigurerOptions {
  master: ReconfigurableMaster;
  listeners: ListenerSet;
  identities: Identities;
  /** Where to read the configuration again (undefined: reloads keep the running one). */
  source: ConfigSource | undefined;
  /** Called with the new spec once a reload that read it went live (restart logs, metrics, …). */
  onLive?: (spec: MasterConfig) => void;
  /** Replaces the cached {@link readConfig} (unit tests). */
  read?: (source: ConfigSource) => Promise<MasterConfig>;
  /** A `hitless scale` override an older master had in force (an upgrade hands it on). */
  scale?: { workers: number; readWorkers: number } | undefined;
}

/**
 * The MasterHandle the rest of the master talks to: status/stop/events pass through to the
 * supervisor; `reload()` reads the configuration first, `scale()` records the override.
 *
 * @example
 * const handle = new Reconfigurer({ master: supervisor, listeners, identities, source });
 * await handle.reload('SIGHUP'); // { ok: true, changes: [{ key: 'workers', from: '2', to: '3' }], … }
 */
export class Reconfigurer implements MasterHandle {
  readonly #o: ReconfigurerOptions;
  readonly #read: (source: ConfigSource) => Promise<MasterConfig>;
  /** Specs handed to the supervisor whose reload has not finished: their sockets stay open. */
  readonly #pending = new Set<MasterConfig>();
  /** The effective `workers` value of the last configuration read (file and flags). */
  #readWorkers: number;
  /** Set by `hitless scale`: the count, and the read `workers` value it overrides. */
  #override: { workers: number; readWorkers: number } | undefined;
  #reading = 0;
  /** The last request's turn to read the configuration (requests take turns, in order). */
  #turns: Promise<void> = Promise.resolve();
  #scaling: Promise<unknown> | undefined;

  constructor(options: ReconfigurerOptions) {
    this.#o = options;
    // The cache holds what the file says: under an override an upgrade handed on, the
    // running spec has the scaled count, and the file (unchanged) still says readWorkers.
    const fileSays = options.scale ? { ...options.master.spec, workers: options.scale.readWorkers } : options.master.spec;
    this.#read = options.read ?? cachedReader(options.source?.cwd ?? process.cwd(), { config: fileSays, fingerprint: options.source?.fingerprint });
    this.#readWorkers = options.scale?.readWorkers ?? options.master.spec.workers;
    this.#override = options.scale && { ...options.scale };
    // Once a new generation serves, no worker is started with the old one's sockets: an
    // address the reload removed closes in the master at the switch, not when the old
    // generation has drained, so that new connections to it are refused once the old workers
    // closed their copies (at their drain's start) instead of waiting in its queue for the
    // whole drain and then being reset.
    options.master.on('event', (e) => {
      if (e.type === 'reload-ready') this.#retainInUse();
    });
  }

  /** Closes the sockets neither the serving configuration nor a reload in flight uses. */
  #retainInUse(): void {
    this.#o.listeners.retain([this.#o.master.spec.listen, ...[...this.#pending].map((p) => p.listen)]);
  }

  /** The `hitless scale` override in force (what an upgrade hands on), if any. */
  get scaleOverride(): { workers: number; readWorkers: number } | undefined {
    return this.#override && { ...this.#override };
  }

  /** The supervisor's status (a reload this layer refused is its last reload: refuseReload). */
  status(): StatusSnapshot {
    return this.#o.master.status();
  }

  stop(force?: boolean): Promise<void> {
    return this.#o.master.stop(force);
  }

  on(event: 'event', listener: (e: MasterEvent) => void): this {
    this.#o.master.on(event, listener);
    return this;
  }

  off(event: 'event', listener: (e: MasterEvent) => void): this {
    this.#o.master.off(event, listener);
    return this;
  }

  async reload(reason: string, options?: ReloadOptions): Promise<ReloadOutcome> {
    const { master, source } = this.#o;
    // Nothing to read for: a programmatic master, one that is stopping (it refuses anyway), or
    // one upgrading itself (it refuses, or holds the request for the master that runs it, which
    // reads then): no `reload-config` for a reload that does not run here.
    const now = master.status();
    if (!source || now.state === 'stopping' || now.upgrade) return master.reload(reason, undefined, options);
    const startedAt = master.now();
    // Requests reach the supervisor in the order they came, each with the configuration
    // read after it arrived: a later request's read must not overtake an earlier one's (the
    // queued reload runs the last spec it was given), and a storm of SIGHUPs runs one
    // validation child at a time, the rest finding the file unchanged.
    const turn = this.#turns.then(() => this.#prepare(reason, startedAt, source, options));
    this.#turns = turn.then(() => undefined, () => undefined);
    const step = await turn;
    if ('refused' in step) return step.refused;
    const { next } = step;
    let outcome: ReloadOutcome;
    try {
      outcome = await step.outcome;
    } finally {
      this.#pending.delete(next);
      // Sockets only a failed reload wanted (the ones the generation it replaced used went at its switch).
      this.#retainInUse();
    }
    if (outcome.ok) this.#o.onLive?.(master.spec);
    // Its changes, computed as it began (config below), are on it: not for one refused before.
    return outcome;
  }

  /** Reads and applies the configuration for one request, then hands it to the supervisor (or refuses it). */
  async #prepare(reason: string, startedAt: number, source: ConfigSource, options: ReloadOptions | undefined): Promise<
    { refused: ReloadOutcome } | { next: MasterConfig; outcome: Promise<ReloadOutcome> }
  > {
    const { master, listeners } = this.#o;
    await this.#scaling;
    this.#reading++;
    let next: MasterConfig;
    let wanted: MasterConfig;
    let changes: ConfigChange[] | undefined;
    const notes: string[] = [];
    const diff = (serving: MasterConfig, to: MasterConfig): ConfigChange[] =>
      diffConfig(serving, to, { inheritedNames: listeners.items.filter((l) => l.inherited).map((l) => l.name) });
    try {
      let read = await this.#read(source);
      const serving = master.spec;
      // Another file than the one the master started from (a hitless.json that appeared for
      // a master started with flags only, or its file went away): nothing of it applies, so
      // nothing of it is diffed or noted but configPath itself (NOT APPLIED).
      if (read.configPath !== serving.configPath) {
        const { flagOverrides: _kept, ...running } = serving;
        read = { ...running, workers: this.#readWorkers, configPath: read.configPath };
      }
      // The validation child takes an empty listen list for socket activation (it is run
      // with LISTEN_FDS, or as `hitless check`, which only warns); whether this master has
      // systemd's sockets is known here. Without them the new generation would get no socket.
      requireListenAddress(read.listen, listeners.items.some((l) => l.inherited), true);
      // An edit of a key a start flag sets changes nothing: say so (a restart without the flag
      // uses the file), or, when the file's value is invalid, that such a restart would fail.
      for (const o of read.flagOverrides ?? []) {
        const what = o.key.startsWith('env.') ? 'value' : JSON.stringify(o.file);
        notes.push(o.invalid === undefined
          ? `${o.key}: the start flag ${o.flag} overrides the file's ${what} (restart the master without it to use the file)`
          : `${o.key}: the start flag ${o.flag} overrides the file's ${what}, which is invalid: a master started without ${o.flag} would refuse it (${o.invalid}); fix the file before dropping the flag`);
      }
      wanted = this.#withScale(read, notes);
      // Against what serves now, for a refusal below; a reload that runs says it again as it begins.
      changes = diff(serving, wanted);
      // What a reload cannot change keeps its running value (the change says so).
      if (wanted.configPath !== serving.configPath) next = { ...serving };
      else {
        next = { ...wanted };
        for (const key of Object.keys(RESTART_ONLY)) Object.assign(next, { [key]: serving[key as keyof MasterConfig] });
      }
      await this.#o.identities.load(next);
      // A log folder that cannot hold the files refuses the reload (the old one keeps logging)
      // rather than dropping every worker line once it is live.
      if (next.logs.mode === 'file') prepareFolder(next.logs.dir, LOG_FILE_NAME, 'logs.dir');
      // A metrics address in use refuses the reload, as it fails a start (else the endpoint
      // went off with only a log line to say so). Not when the port stays: ours holds it.
      if (next.metrics && next.metrics.listen !== serving.metrics?.listen) {
        await probeMetrics(next.metrics.listen, serving.metrics?.listen, [...serving.listen, ...next.listen]).catch(async (err: unknown) => { throw await nameMetricsHolder(err); });
      }
      listeners.add(next.listen);
    } catch (err) {
      // Refused after the diff: what it would have changed is said, then why not.
      if (changes) {
        master.announceConfig(reason, changes, notes);
        options?.follow?.({ type: 'reload-config', reason, changes, notes });
      }
      return { refused: this.#refuse(reason, startedAt, err, changes, notes) };
    } finally {
      this.#reading--;
    }
    this.#pending.add(next);
    // The diff as it begins, against what serves then: a queued reload waited for one that
    // may have applied the same edits (or rolled back), so the diff of the request is stale.
    const config = (): ReloadConfigDiff => ({ changes: diff(master.spec, wanted), notes });
    return { next, outcome: master.reload(reason, next, { ...options, config }) };
  }

  /**
   * `hitless scale N`: the serving generation gets N workers now, and later reloads keep N
   * as long as the `workers` value they read (file, with `--workers` over it) is the one
   * read last before the scale; a reload that reads another value ends the override.
   */
  async scale(workers: number): Promise<ScaleOutcome> {
    const { master } = this.#o;
    workerCount(workers, 'scale');
    if (this.#reading > 0 || this.#pending.size > 0 || this.#scaling) return busyScale(master.status().generation, master.spec.workers, master.now());
    const running = (async () => {
      try {
        const outcome = await master.scale(workers);
        // Scaled to what the configuration says: nothing to keep (no note at every reload).
        if (outcome.ok) this.#override = workers === this.#readWorkers ? undefined : { workers, readWorkers: this.#readWorkers };
        return outcome;
      } finally {
        this.#scaling = undefined;
      }
    })();
    this.#scaling = running;
    return running;
  }

  #withScale(read: MasterConfig, notes: string[]): MasterConfig {
    const o = this.#override;
    this.#readWorkers = read.workers;
    if (!o) return read;
    if (read.workers === o.readWorkers) {
      notes.push(`workers: keeping ${o.workers} from \`hitless scale\` (the configuration still says ${read.workers})`);
      return { ...read, workers: o.workers };
    }
    this.#override = undefined;
    notes.push(`workers: the configuration now says ${read.workers} (it said ${o.readWorkers} when \`hitless scale ${o.workers}\` ran); the override ends`);
    return read;
  }

  #refuse(reason: string, startedAt: number, err: unknown, changes: ConfigChange[] | undefined, notes: string[]): ReloadOutcome {
    return this.#o.master.refuseReload(reason, startedAt, err, { ...(changes ? { changes } : {}), ...(notes.length ? { notes } : {}) });
  }
}

/**
 * Binds the metrics address `listen` and lets it go; throws ERR_BIND as the endpoint's start
 * would (`addresses`: the listen addresses the reload brings, which this master holds).
 */
async function probeMetrics(listen: string, serving: string | undefined, addresses: ListenerSpec[]): Promise<void> {
  const { host, port } = parseMetricsListen(listen);
  if (port !== 0 && serving !== undefined && parseMetricsListen(serving).port === port) return;
  const mine = addresses.find((l) => l.kind === 'tcp' && l.port === port);
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(new HitlessError('ERR_BIND',
      `config "metrics.listen": cannot listen on ${listen}: ${err.code ?? err.message}` +
      (mine && err.code === 'EADDRINUSE' ? ` (port ${port} is this master's own listen address ${mine.source}: give metrics another port)` : '') +
      (serving ? ` (metrics stay on ${serving})` : ''),
      { cause: err, details: { metrics: listen, errno: err.code, own: mine !== undefined, ...(serving ? { stay: serving } : {}) } })));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}
