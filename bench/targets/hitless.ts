/**
 * The hitless master from this repository (build/src/cli/main.js), started in the
 * foreground with N workers running the benchmark app. Reload by `hitless reload`
 * (waits for the outcome) or by SIGHUP to the master. Its JSON event log (stderr) is
 * kept as records, each stamped with the harness clock when it arrived.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childrenOf, isAlive, now, run, spawnGroup, waitFor, waitForPort, type Spawned } from '../proc.js';
import { appChildren, appEnv, appPath, repoRoot, type Target, type TargetOptions } from './target.js';

export const cliPath = join(repoRoot, 'build', 'src', 'cli', 'main.js');

/** One line of the master's JSON log; `at` is when the harness read it (proc.now clock). */
export interface MasterRecord {
  event?: string;
  msg: string;
  at: number;
  [key: string]: unknown;
}

export interface HitlessExtra {
  /** Extra `hitless start` flags (e.g. --no-handover). */
  args?: string[];
  /** Replaces the generated name. */
  name?: string;
  /** Extra app environment. */
  env?: Record<string, string>;
  /** The worker command instead of `node build/bench/app.js` (a framework app), and its folder. */
  command?: string[];
  cwd?: string;
  /** Which of the master's children serve (default: those running app.js). */
  serves?: (pid: number) => boolean;
  /** Another build's CLI (build/src/cli/main.js of a variant), to compare builds side by side. */
  cli?: string;
}

/** CPU time (user + system) a process used so far, ms; undefined when it is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** USER_HZ: /proc's CPU times are in these ticks (100 on Linux for x86 and arm). */
const CLOCK_TICKS = 100;

export class HitlessTarget implements Target {
  readonly name: string;
  readonly port: number;
  /** The master's log records so far. */
  readonly records: MasterRecord[] = [];
  private master: Spawned | undefined;
  private readonly runDir = mkdtempSync(join(tmpdir(), 'hitless-bench-'));

  /** How reload() asks: `hitless reload` or SIGHUP (may change between reloads). */
  constructor(private readonly opts: TargetOptions, public method: 'cli' | 'sighup' = 'cli', private readonly extra: HitlessExtra = {}) {
    this.port = opts.port;
    this.name = extra.name ?? `hitless ${opts.workers}w` + (method === 'sighup' ? ' (SIGHUP)' : '') + (opts.plainApp ? ' (plain app)' : '');
  }

  get runDirectory(): string {
    return this.runDir;
  }

  /** Records of one event type. */
  events(event: string): MasterRecord[] {
    return this.records.filter((r) => r.event === event);
  }

  async start(): Promise<void> {
    const args = [
      this.extra.cli ?? cliPath, 'start',
      '--listen', `127.0.0.1:${this.port}`,
      '--workers', String(this.opts.workers),
      '--ready-timeout', '10s',
      '--drain-timeout', '10s',
      '--run-dir', this.runDir,
      '--log-format', 'json',
      ...(this.extra.args ?? []),
      '--', ...(this.extra.command ?? ['node', appPath]),
    ];
    const master = spawnGroup('node', args, {
      env: appEnv(this.opts, this.extra.env),
      // The master reads ./hitless.json when present: start it where there is none.
      cwd: this.extra.cwd ?? this.runDir,
    });
    this.master = master;
    let partial = '';
    master.child.stderr?.on('data', (chunk: Buffer) => {
      const at = now();
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        try {
          const record: MasterRecord = { ...(JSON.parse(line) as { msg: string }), at };
          // A new worker's boot CPU, read as its READY is logged (a few ms late at most).
          if (record.event === 'worker-ready' && typeof record.pid === 'number') record.cpuMs = cpuMs(record.pid);
          this.records.push(record);
        } catch {
          // a worker's own stderr line
        }
      }
    });
    const failed = master.exited.then(({ code }) => {
      throw new Error(`hitless master exited (${code}) while starting:\n${master.output()}`);
    });
    failed.catch(() => undefined);
    await Promise.race([
      (async () => {
        await waitForPort(this.port, 30_000);
        await waitFor('hitless workers', () => this.servingPids().length >= this.opts.workers, 30_000);
        // Serving = the first generation READY (the port accepts earlier: the master holds it).
        // A reload asked for before master-ready is queued and never runs (hitless at 72e760d).
        await waitFor('hitless master-ready', () => this.records.some((r) => r.event === 'master-ready'), 30_000);
      })(),
      failed,
    ]);
  }

  async reload(): Promise<void> {
    if (!this.master) throw new Error('hitless is not running');
    if (this.method === 'sighup') {
      process.kill(this.master.pid, 'SIGHUP');
      return;
    }
    const r = await run('node', [this.extra.cli ?? cliPath, 'reload', '--run-dir', this.runDir], {}, 60_000);
    if (r.code !== 0) throw new Error(`hitless reload exited ${r.code}: ${r.stdout}${r.stderr}`);
  }

  servingPids(): number[] {
    if (!this.master) return [];
    return this.extra.serves ? childrenOf(this.master.pid).filter(this.extra.serves) : appChildren(this.master.pid);
  }

  supervisorPid(): number | undefined {
    return this.master && isAlive(this.master.pid) ? this.master.pid : undefined;
  }

  /**
   * The master's own duration of its last reload (reload-start → old generation drained),
   * from its `reload-done` record's `ms`; SIGHUP's debounce happens before reload-start.
   */
  lastReloadMs(): number | undefined {
    const last = this.events('reload-done').at(-1)?.ms;
    return typeof last === 'number' ? last : undefined;
  }

  /** Master output so far (for reports when something failed). */
  output(): string {
    return this.master?.output() ?? '';
  }

  async stop(): Promise<void> {
    const master = this.master;
    this.master = undefined;
    if (master) {
      master.child.kill('SIGTERM');
      const timer = setTimeout(() => master.killGroup('SIGKILL'), 20_000);
      await master.exited;
      clearTimeout(timer);
      master.killGroup('SIGKILL');
    }
    rmSync(this.runDir, { recursive: true, force: true });
  }
}
