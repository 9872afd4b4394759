/**
 * `hitless deploy`: preflight every host, release to the first host alone (the canary),
 * then to the others in batches; each host uploads the artifact (sha256 checked on
 * arrival), runs `hitless release` and must stay healthy for the settle time. At the
 * first failure nothing more is started, and every host that already took the release is
 * switched back with `hitless rollback`, so the fleet never stays on mixed versions.
 *
 * The balancer needs no part in this: a host's release is a hitless reload, so its
 * sockets never close and nothing is dropped while it switches.
 */
import { basename } from 'node:path';
import { abortReason } from '../errors.js';
import { makeReleaseId, validateReleaseId } from '../release/layout.js';
import { formatDuration } from '../config/duration.js';
import { artifactContentHash, formatBytes, readArtifact, remoteArtifactPath, type Artifact } from './artifact.js';
import { planBatches } from './config.js';
import { describeProbe, settleHealth, type Probe } from './health.js';
import { removeLeftovers } from './leftovers.js';
import { acquireDeployLock, deployLockPath } from './lock.js';
import { preflight, type HostCheck } from './preflight.js';
import { readCurrentRelease, release, rollback, upload, type StepFailure } from './steps.js';
import { openRemote, type RunRemote } from './transport.js';
import type { FleetConfig, FleetEvent, FleetHost, FleetPlan, FleetResult, HostResult } from './types.js';

export interface DeployFleetOptions {
  config: FleetConfig;
  /** Path of the release archive. */
  artifact: string;
  /** Release id on every host (default: UTC time + the artifact's short sha256). */
  id?: string;
  /** Preflight and plan only; nothing changes and no lock is taken. */
  dryRun?: boolean;
  onEvent?: (e: FleetEvent) => void;
  /** Aborting stops the rollout before its next batch (steps running finish) and rolls back. */
  signal?: AbortSignal;
  /** Replaceable for tests; default: ssh or the exec template. */
  run?: RunRemote;
  probe?: Probe;
  now?: () => number;
}

/**
 * Deploys `artifact` to the fleet; resolves with every host's outcome (status `failed`
 * after a rollback, `live` when every host took it).
 *
 * @throws HitlessError ERR_DEPLOY_BUSY, ERR_DEPLOY_PREFLIGHT (nothing changed), ERR_USAGE.
 * @example
 * const result = await deployFleet({ config: loadFleetConfig(undefined, cwd), artifact: 'app.tgz', onEvent: print });
 * if (result.status === 'failed') console.error(result.failure);
 */
export async function deployFleet(opts: DeployFleetOptions): Promise<FleetResult> {
  const { config } = opts;
  const now = opts.now ?? Date.now;
  const emit = opts.onEvent ?? (() => {});
  const artifact = await readArtifact(opts.artifact);
  const id = opts.id !== undefined ? validateReleaseId(opts.id) : makeReleaseId(artifact.sha256, now());
  const batches = planBatches(config.hosts, config.batch);
  const plan: FleetPlan = {
    id, artifact: artifact.path, bytes: artifact.bytes, sha256: artifact.sha256, batches: batches.map((b) => b.map((h) => h.name)),
  };
  const rest = config.hosts.length - 1;
  // Announced once the lock is held: a deploy refused as busy never said it was starting.
  const lock = opts.dryRun ? undefined : await acquireDeployLock(deployLockPath(config.configPath), { id, artifact: basename(artifact.path) }, now);
  emit({ level: 'info', text: `deploy ${id}: ${basename(artifact.path)} (${formatBytes(artifact.bytes)}, sha256 ${artifact.sha256.slice(0, 12)}) to ${config.hosts.length} host${rest ? 's' : ''}: ${plan.batches[0]?.[0]} as the canary${rest ? `, then ${rest} more in batches of ${config.batch}` : ''}${opts.dryRun ? ' (dry run)' : ''}` });
  let closeRemote: (() => Promise<void>) | undefined;
  try {
    const remote = opts.run ? { run: opts.run, close: async () => {} } : await openRemote(config);
    closeRemote = () => remote.close();
    const run = remote.run;
    let contentHash: Promise<string> | undefined;
    const identity = { name: basename(artifact.path), sha256: artifact.sha256, contentHash: () => (contentHash ??= artifactContentHash(artifact.path)) };
    const checks = await preflight(config, id, run, opts.probe, (c) => emit(describeCheck(c)), identity);
    const results = config.hosts.map((h): HostResult => {
      const before = checks.get(h.name)?.current;
      return { name: h.name, before, after: before, outcome: 'untouched', ms: 0 };
    });
    if (opts.dryRun) {
      batches.forEach((b, i) => emit({ level: 'info', text: `would ${i === 0 ? 'release to the canary' : `release batch ${i}:`} ${b.map((h) => h.name).join(', ')}` }));
      return { ...plan, status: 'dry-run', hosts: results };
    }
    if (lock?.stale) {
      await removeLeftovers(config, lock.stale, run, emit);
      // A host it had switched already runs that release without the health check the dead
      // deploy would have made: named, so it is not taken for a checked one.
      const dead = lock.stale;
      for (const host of config.hosts.filter((h) => h.health !== undefined && checks.get(h.name)?.current === dead.id)) {
        emit({ level: 'warn', host: host.name, text: `current is ${dead.id}, switched by the deploy that died before its health check; ${dead.id === id ? 'this deploy checks it again' : `this deploy releases ${id} there and checks its health`}` });
      }
    }
    return await new Rollout(config, artifact, id, run, opts.probe, now, emit, results, opts.signal).run(plan, batches);
  } finally {
    await closeRemote?.();
    await lock?.release();
  }
}

function describeCheck(c: HostCheck): FleetEvent {
  if (c.problems.length > 0) return { level: 'error', host: c.name, text: `preflight: ${c.problems.join('; ')}` };
  return { level: 'info', host: c.name, text: `preflight ok: hitless ${c.version}, current ${c.current ?? 'none'}, master running${c.health ? `, health ${c.health}` : ''}` };
}

class Rollout {
  /** Hosts whose `current` may differ from before, by the batch they were released in (the last is the running one). */
  private readonly changed: FleetHost[][] = [];
  private failure: FleetResult['failure'];
  private readonly byName: Map<string, HostResult>;

  constructor(
    private readonly config: FleetConfig,
    private readonly artifact: Artifact,
    private readonly id: string,
    private readonly remote: RunRemote,
    private readonly probe: Probe | undefined,
    private readonly now: () => number,
    private readonly emit: (e: FleetEvent) => void,
    private readonly results: HostResult[],
    private readonly signal: AbortSignal | undefined,
  ) {
    this.byName = new Map(results.map((r) => [r.name, r]));
  }

  async run(plan: FleetPlan, batches: FleetHost[][]): Promise<FleetResult> {
    for (const batch of batches) {
      if (this.signal?.aborted) {
        const reason = abortReason(this.signal);
        this.failure = { host: batch[0]?.name ?? '?', step: 'interrupted', code: 'ERR_DEPLOY_FAILED', message: `interrupted (${reason}) before ${batch.map((h) => h.name).join(', ')}` };
        this.emit({ level: 'warn', text: `interrupted (${reason}); not starting ${batch.map((h) => h.name).join(', ')}` });
        break;
      }
      this.changed.push([]);
      // A batch's hosts run together; one failing does not abort the others half-way
      // (a release is not safely interruptible), it stops the next batch. Anything
      // unforeseen counts as a failure of that host, which may have switched.
      await Promise.all(batch.map((host) => this.deployHost(host).catch((err: unknown) => {
        this.markChanged(host);
        this.fail(this.byName.get(host.name) as HostResult, 'release', { code: 'ERR_DEPLOY_REMOTE', message: err instanceof Error ? err.message : String(err) });
      })));
      if (this.failure) break;
    }
    if (this.failure) await this.undo();
    return { ...plan, status: this.failure ? 'failed' : 'live', hosts: this.results, ...(this.failure ? { failure: this.failure } : {}) };
  }

  private async deployHost(host: FleetHost): Promise<void> {
    const r = this.byName.get(host.name) as HostResult;
    const start = this.now();
    const info = (text: string): void => this.emit({ level: 'info', host: host.name, text });
    try {
      const file = remoteArtifactPath(this.config.uploadDir, this.id, host.name, this.artifact.extension);
      info(`upload ${formatBytes(this.artifact.bytes)} to ${file}`);
      const up = await upload(this.remote, host, this.artifact.path, file, this.artifact.sha256);
      if (!up.ok) return this.fail(r, 'upload', up);
      info(`uploaded, sha256 verified on arrival (${formatDuration(this.now() - start)})`);

      info(`hitless release ${this.id}`);
      const rel = await release(this.remote, host, this.config.hitless, file, this.id);
      if (!rel.ok) {
        if (rel.changed) this.markChanged(host);
        return this.fail(r, 'release', rel);
      }
      r.after = rel.id;
      if (rel.status === 'live') {
        this.markChanged(host);
        info(`release ${rel.id} is live, generation ${rel.generation ?? '?'} (${formatDuration(this.now() - start)})`);
      } else {
        info(`identical to its current release ${rel.id}; nothing to switch`);
      }

      if (host.health !== undefined) {
        const settle = await settleHealth(host.health, this.config.settleMs, this.probe);
        if (!settle.ok) {
          const answer = settle.failure ? describeProbe(settle.failure) : 'no answer';
          return this.fail(r, 'health', { code: 'ERR_DEPLOY_HEALTH', message: `health ${host.health} answered ${answer} (probe ${settle.probes} of the ${formatDuration(this.config.settleMs)} settle time)` });
        }
        info(`health ${host.health}: 2xx for ${formatDuration(this.config.settleMs)} (${settle.probes} probe${settle.probes === 1 ? '' : 's'})`);
      }
      r.outcome = rel.status === 'live' ? 'live' : 'unchanged';
    } finally {
      r.ms = this.now() - start;
    }
  }

  private fail(r: HostResult, step: NonNullable<HostResult['step']>, f: StepFailure): void {
    Object.assign(r, { outcome: 'failed', step, code: f.code, message: f.message, ...(f.output?.length ? { output: f.output } : {}) });
    this.failure ??= { host: r.name, step, code: f.code, message: f.message };
    this.emit({ level: 'error', host: r.name, text: `${step} failed: ${f.message} (${f.code})`, ...(f.output?.length ? { output: f.output } : {}) });
  }

  private markChanged(host: FleetHost): void {
    this.changed.at(-1)?.push(host);
  }

  /**
   * Switches back every host that took the release by the batches they went in, newest
   * batch first: the canary, released alone and judged first, is switched back alone and
   * last, never together with hosts of a later batch.
   */
  private async undo(): Promise<void> {
    const batches = this.changed.filter((b) => b.length > 0).reverse().map((b) => [...b].reverse());
    const hosts = batches.flat();
    if (hosts.length === 0) {
      this.emit({ level: 'warn', text: 'stopped; no host had switched to the new release, nothing to roll back' });
      return;
    }
    this.emit({ level: 'warn', text: `stopped; rolling back ${hosts.map((h) => h.name).join(', ')}` });
    for (const batch of batches) await Promise.all(batch.map((h) => this.rollbackHost(h)));
  }

  private async rollbackHost(host: FleetHost): Promise<void> {
    const r = this.byName.get(host.name) as HostResult;
    const start = this.now();
    try {
      if (r.before === undefined) {
        r.outcome = 'rollback-failed';
        r.message = `${r.message ? `${r.message}; ` : ''}it had no release before this deploy, so there is none to roll back to`;
        this.emit({ level: 'error', host: host.name, text: `cannot roll back: it had no release before ${this.id}` });
        return;
      }
      this.emit({ level: 'info', host: host.name, text: `hitless rollback ${r.before}` });
      const back = await rollback(this.remote, host, this.config.hitless, r.before);
      if (back.ok) {
        r.after = r.before;
        r.rolledBack = true;
        if (r.outcome !== 'failed') r.outcome = 'rolled-back';
        this.emit({ level: 'info', host: host.name, text: `rolled back to ${r.before}${back.generation ? `, generation ${back.generation}` : ''} (${formatDuration(this.now() - start)})` });
        return;
      }
      r.outcome = 'rollback-failed';
      r.code ??= back.code;
      r.message = `${r.message ? `${r.message}; ` : ''}rollback to ${r.before} failed: ${back.message}`;
      r.after = await readCurrentRelease(this.remote, host);
      this.emit({ level: 'error', host: host.name, text: `rollback to ${r.before} failed: ${back.message} (${back.code}); it runs ${r.after ?? 'an unknown release'}`, ...(back.output?.length ? { output: back.output } : {}) });
    } finally {
      r.ms += this.now() - start;
    }
  }
}
