/**
 * Runs the real `hitless start` CLI as a child process for end-to-end tests, reads its
 * JSON event log from stderr, and cleans up after the test: the master, every worker it
 * spawned (they run in their own process groups) and the temp folders.
 *
 * Tests synchronise on events (`waitEvent`), never on sleeps; node:test's per-test
 * timeout bounds every wait.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { resolveRunDir } from '../../src/config/rundir.js';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
export const cli = join(root, 'build', 'src', 'cli', 'main.js');
/** A compiled fixture (test/fixtures/<path>.ts → build/test/fixtures/<path>.js). */
export const fixture = (path: string): string => join(root, 'build', 'test', 'fixtures', path);
/** A fixture kept as source (Python, broken JavaScript). */
export const sourceFixture = (path: string): string => join(root, 'test', 'fixtures', path);

export interface LogRecord {
  event?: string;
  msg: string;
  level: string;
  [key: string]: unknown;
}

export interface StartOptions {
  command: string[];
  /** Extra `hitless start` flags. */
  args?: string[];
  workers?: number;
  /** Defaults to one listener on 127.0.0.1:0. */
  listen?: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Resolve once the first generation is serving (default true). */
  waitReady?: boolean;
}

function occurrences(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

export class MasterProcess {
  readonly child: ChildProcess;
  readonly runDir: string;
  readonly records: LogRecord[] = [];
  readonly workerPids = new Set<number>();
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stdoutWaiters: { text: string; times: number; resolve: () => void }[] = [];
  private waiters: { pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void; from: number }[] = [];

  constructor(child: ChildProcess, runDir: string) {
    this.child = child;
    this.runDir = runDir;
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.stdout += chunk;
      this.stdoutWaiters = this.stdoutWaiters.filter((w) => {
        if (occurrences(this.stdout, w.text) < w.times) return true;
        w.resolve();
        return false;
      });
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  private onLine(line: string): void {
    let rec: LogRecord;
    try {
      rec = JSON.parse(line) as LogRecord;
    } catch {
      return; // a worker's own stderr line
    }
    if (rec.event === 'worker-spawn' && typeof rec.pid === 'number') this.workerPids.add(rec.pid);
    this.records.push(rec);
    const index = this.records.length - 1;
    this.waiters = this.waiters.filter((w) => {
      if (index >= w.from && w.pred(rec)) {
        w.resolve(rec);
        return false;
      }
      return true;
    });
  }

  events(name: string): LogRecord[] {
    return this.records.filter((r) => r.event === name);
  }

  /** Resolves with the first record (from index `from`, default: any so far) matching `pred`; rejects if the master exits first. */
  waitEvent(pred: string | ((r: LogRecord) => boolean), from = 0): Promise<LogRecord> {
    const test = typeof pred === 'string' ? (r: LogRecord) => r.event === pred : pred;
    const found = this.records.slice(from).find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      this.waiters.push({ pred: test, resolve, from });
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`master exited (${String(code ?? signal)}) before the awaited event\n${this.stderr.slice(-4000)}`)),
      );
    });
  }

  /** Resolves once the master's stdout (where worker output goes) contains `text` (at least `times` times). */
  waitStdout(text: string, times = 1): Promise<void> {
    if (occurrences(this.stdout, text) >= times) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.stdoutWaiters.push({ text, times, resolve });
      void this.exited.then(() => reject(new Error(`master exited before printing ${text}`)));
    });
  }

  /** The address of a listener as reported at start ("127.0.0.1:41234"). */
  address(name = 'http'): string {
    const start = this.records.find((r) => r.event === 'master-start');
    const listeners = (start?.listeners ?? []) as { name: string; address: string }[];
    const l = listeners.find((x) => x.name === name);
    if (!l) throw new Error(`no listener ${name} in ${JSON.stringify(listeners)}`);
    return l.address;
  }

  url(path = '/', name = 'http'): string {
    return `http://${this.address(name)}${path}`;
  }

  /** Runs `hitless <args…> --run-dir <this master's run dir>` and collects its output. */
  cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli([...args, '--run-dir', this.runDir], env);
  }

  /**
   * SIGHUP-free reload through the control socket; resolves with the CLI's result once the
   * master's own log has shown the reload's outcome too. The log comes on another pipe than
   * the CLI's exit: on a busy machine a test reading events right after the CLI returned
   * could miss the last reload's `reload-drained` and `reload-done`.
   */
  async reload(): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const from = this.records.length;
    const result = await this.cli(['reload']);
    // A master that exits instead (a reload refused while stopping logs no outcome) ends the wait.
    await this.waitEvent('reload-done', from).catch(() => undefined);
    return result;
  }

  async status(): Promise<{ generation: number; workers: { pid?: number; state: string; generation: number; restarts: number }[]; [k: string]: unknown }> {
    const r = await this.cli(['status', '--json']);
    if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as never;
  }

  /** Graceful stop (SIGTERM) and wait for the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

/**
 * `hitless <args>` in `cwd`, with `env` over this process's environment (`as.env` instead,
 * as another user with `as.uid`/`as.gid`, and under `ulimit -n <as.fdLimit>`, soft and hard,
 * so Node cannot raise it); resolves once it exited.
 */
export function runCli(
  args: string[], env: Record<string, string> = {}, cwd = root, as: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv; fdLimit?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const { env: base = process.env, fdLimit, ...ids } = as;
    const [cmd, ...argv] = fdLimit === undefined
      ? [process.execPath, cli, ...args]
      : ['sh', '-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, cli, ...args];
    const child = spawn(cmd!, argv, { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Is a process with this PID still there? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Wraps a master child process started by a test (directly, or through unshare,
 * systemd-socket-activate, …) and registers its cleanup: SIGKILL the master if it still
 * runs, SIGKILL every worker's process group it spawned, remove `dir`.
 */
export function trackMaster(t: TestContext, child: ChildProcess, runDir: string, dir?: string): MasterProcess {
  const master = new MasterProcess(child, runDir);
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await master.exited;
    }
    for (const pid of master.workerPids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return master;
}

/** Starts `hitless start` and registers cleanup on the test. */
export async function startMaster(t: TestContext, options: StartOptions): Promise<MasterProcess> {
  const tmp = mkdtempSync(join(tmpdir(), 'hitless-test-'));
  const runDir = join(tmp, 'run');
  const listen = options.listen ?? ['127.0.0.1:0'];
  const args = [
    cli,
    'start',
    '--log-format',
    'json',
    '--run-dir',
    runDir,
    '--workers',
    String(options.workers ?? 1),
    ...listen.flatMap((l) => ['--listen', l]),
    // The hand-over paced for 1 s, not the default 5 s (a latency lever: the same code path,
    // and reloads under saturating load end seconds sooner); a test's own flag comes after and wins.
    '--handover-spread',
    '1s',
    ...(options.args ?? []),
    '--',
    ...options.command,
  ];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? tmp,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const master = trackMaster(t, child, runDir, tmp);
  if (options.waitReady !== false) {
    await master.waitEvent('master-ready');
  }
  return master;
}

/**
 * Starts `hitless start <args>` in `dir` the way a user does it: no --run-dir, so the
 * master uses the default run dir of that folder, kept private to the test by
 * XDG_RUNTIME_DIR=dir (pass the same env to the CLI commands that should find it).
 * JSON event log; cleanup registered on the test (the folder is the caller's).
 */
export async function startMasterIn(t: TestContext, dir: string, args: string[], options: { waitReady?: boolean; env?: Record<string, string> } = {}): Promise<MasterProcess> {
  const env = { ...process.env, XDG_RUNTIME_DIR: dir, ...options.env };
  const child = spawn(process.execPath, [cli, 'start', '--log-format', 'json', ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, resolveRunDir(dir, undefined, env));
  if (options.waitReady !== false) await master.waitEvent('master-ready');
  return master;
}

/**
 * Waits for a condition nobody announces (a process that is not our child exiting, a
 * port becoming free): checks every `everyMs` until `timeoutMs`, then throws.
 */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
