/**
 * How the old master starts the new one in an upgrade: the hitless installed *now* — the
 * path this master was started from (`process.argv[1]`: node_modules/.bin/hitless, a
 * global /usr/bin/hitless symlink, or the script itself), resolved again at the upgrade,
 * so a symlink an install moved since points at the new copy; a path in pnpm's versioned
 * store taken under the app's `node_modules/hitless` symlink instead, and under Yarn
 * Plug'n'Play the hitless Yarn resolves from the app folder now (install-layout.ts,
 * h23 F3); or `--exec <path>` — run
 * with the same `hitless start` arguments, working directory and environment, and
 * `--no-config` first when this master read no config file (it stays flags only).
 *
 * A JavaScript file runs under the Node binary at this master's path (`process.execPath`,
 * read again from disk, so a Node upgraded in place is the one that runs) with this
 * master's Node flags; anything else (a launcher script) runs as it is, its `#!` line
 * choosing the runtime. The new master gets the path as given, not its resolution, so
 * its own later upgrades resolve the same path again.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HitlessError } from '../errors.js';
import { appCopy, copyOf, isPnpPath, pathInPackage, stablePath } from './install-layout.js';
import type { PeerLaunch } from './peer.js';
import { UPGRADE_ENV, UPGRADE_PROTOCOL } from './peer-protocol.js';

export interface LaunchContext {
  /** The script this master was started from (process.argv[1]). */
  startedFrom: string | undefined;
  /** `hitless start`'s arguments (undefined: a master run programmatically, which cannot upgrade). */
  startArgv: string[] | undefined;
  cwd: string;
  env: NodeJS.ProcessEnv;
  execPath: string;
  execArgv: string[];
  /** How many of the handed-over sockets came from systemd: the new master's configuration check needs LISTEN_FDS to allow an empty listen list. */
  inherited: number;
  /** This master read no config file (started with flags only): the new one must not read a hitless.json that appeared since either. */
  flagsOnly?: boolean;
  /** A file of the hitless this master runs (default: this module's own): which copy it is. */
  self?: string;
}

/** The app folder has another hitless version than the one the new master runs (the same copy as this master's): what it has, and the --exec that runs it. */
export interface NotRun {
  version: string;
  exec: string;
}

/** How long Yarn may take to resolve hitless from the app folder (a child `node` with the master's NODE_OPTIONS). */
const PNP_RESOLVE_TIMEOUT_MS = 10_000;

/**
 * Under Yarn Plug'n'Play: the same file of the hitless Yarn resolves from the app folder now.
 * Asked of a child `node` with the master's environment (Yarn's `--require .pnp.cjs` in
 * NODE_OPTIONS), which reads the .pnp.cjs as it is now, not as this master loaded it. The
 * child runs beside the master's event loop (a synchronous spawn would stop control
 * requests, worker messages and drains for as long as Node takes to start, up to the limit).
 */
async function pnpInstalled(ctx: LaunchContext, startedFrom: string): Promise<string> {
  const inside = pathInPackage(startedFrom);
  const script = "process.stdout.write(require('node:module').createRequire(process.cwd() + '/').resolve('hitless/package.json'))";
  const r = await run(ctx.execPath, ['-e', script], { cwd: ctx.cwd, env: ctx.env }, PNP_RESOLVE_TIMEOUT_MS);
  if (inside && r.status === 0 && r.stdout.endsWith('package.json')) return join(dirname(r.stdout), inside);
  const why = r.error ?? (r.stderr.split('\n').find((l) => /Error/.test(l)) ?? `exit code ${String(r.status)}`).trim();
  throw new HitlessError('ERR_UPGRADE_EXEC',
    `cannot tell which hitless this app has installed now: this master runs from Yarn Plug'n'Play's cache (${startedFrom}), and resolving hitless from ${ctx.cwd} failed (${why}); pass --exec "$(yarn bin hitless)"`);
}

/** What a child run said: its exit status (null: killed), its output, or why it did not run or finish. */
interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: string;
}

/** Runs `command` to its end, SIGKILLed after `limitMs` (`error` then says so). Never rejects. */
function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }, limitMs: number): Promise<RunResult> {
  return new Promise((resolveRun) => {
    const out = { stdout: '', stderr: '' };
    let error: string | undefined;
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
    const timer = setTimeout(() => {
      error = `no answer within ${limitMs / 1000} s`;
      child.kill('SIGKILL');
    }, limitMs);
    // A spawn that fails (ENOENT) says 'error' and then 'close', like one that ran.
    child.on('error', (err) => (error ??= err.message));
    child.on('close', (status) => {
      clearTimeout(timer);
      resolveRun({ status, ...out, ...(error === undefined ? {} : { error }) });
    });
  });
}

/**
 * The new master runs this master's own copy while the app folder has another version: say
 * which, and how to run it. Nothing to say when this master's own files are gone (pnpm's
 * prune removed its store folder: h29 N1): the new master cannot be running them.
 */
function notRun(ctx: LaunchContext, real: string): NotRun | undefined {
  let ownFile: string;
  try {
    ownFile = realpathSync(ctx.self ?? fileURLToPath(import.meta.url));
  } catch {
    return undefined;
  }
  const own = copyOf(ownFile);
  const running = copyOf(real);
  const app = appCopy(ctx.cwd);
  if (!own || !running || !app || running.real !== own.real || app.real === own.real || app.version === own.version) return undefined;
  return { version: app.version, exec: app.cli };
}

/**
 * The new master's launch: command, arguments, working directory, environment and the
 * sockets (`fds`, landing at 3, 4, … in the new process).
 *
 * Asynchronous for Yarn Plug'n'Play (a child `node` resolves the path; see pnpInstalled).
 *
 * @throws HitlessError ERR_UPGRADE_EXEC (a rejection) when the path cannot be run.
 * @example
 * const { launch, exec } = await upgradeLaunch(undefined, ctx, listeners.fds);
 * // exec: '/usr/bin/hitless → /usr/lib/node_modules/hitless/build/src/cli/main.js'
 */
export async function upgradeLaunch(execOption: string | undefined, ctx: LaunchContext, fds: number[]): Promise<{ launch: PeerLaunch; exec: string; notRun?: NotRun }> {
  if (!ctx.startArgv) throw new HitlessError('ERR_UPGRADE_EXEC', 'this master was not started by `hitless start`, so there is no command line to start the new one with');
  const given = execOption ?? ctx.startedFrom;
  if (!given) throw new HitlessError('ERR_UPGRADE_EXEC', 'cannot tell which hitless this master was started from; pass --exec <path of the hitless to run>');
  let path = resolve(ctx.cwd, given);
  if (execOption === undefined) path = isPnpPath(path) ? await pnpInstalled(ctx, path) : stablePath(path, ctx.cwd);
  let real: string;
  try {
    real = realpathSync(path);
    if (!statSync(real).isFile()) throw new Error('not a file');
  } catch (err) {
    throw new HitlessError('ERR_UPGRADE_EXEC',
      `cannot run ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; ${execOption ? 'check --exec' : 'pass --exec <path of the hitless to run>'}`, { cause: err });
  }
  let command: string[];
  if (/\.[cm]?js$/.test(real)) {
    command = [ctx.execPath, ...ctx.execArgv, path];
  } else {
    try {
      accessSync(real, constants.X_OK);
    } catch (err) {
      throw new HitlessError('ERR_UPGRADE_EXEC', `cannot run ${path}: it is neither a JavaScript file nor executable`, { cause: err });
    }
    command = [path];
  }
  const env: Record<string, string | undefined> = { ...ctx.env, [UPGRADE_ENV]: String(UPGRADE_PROTOCOL) };
  // WATCHDOG_PID names this process; unset, the watchdog is the main process's, which the new master becomes.
  delete env.WATCHDOG_PID;
  if (ctx.inherited > 0) env.LISTEN_FDS = String(ctx.inherited);
  // With the same arguments in the same folder, the new master of a master started with flags
  // only would read a hitless.json written since, which this master ignores (h18 N3).
  const args = ctx.flagsOnly && !ctx.startArgv.includes('--no-config') ? ['--no-config', ...ctx.startArgv] : ctx.startArgv;
  const stale = execOption === undefined ? notRun(ctx, real) : undefined;
  return {
    launch: { command: [...command, 'start', ...args], cwd: ctx.cwd, env, fds },
    exec: real === path ? path : `${path} → ${real}`,
    ...(stale ? { notRun: stale } : {}),
  };
}
