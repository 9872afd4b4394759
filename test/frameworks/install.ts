/**
 * Real framework apps for the tests, installed from the registry and built with the
 * framework's own tools, in a cache folder OUTSIDE the repo (their dependencies are far
 * too heavy for the project's package.json).
 *
 * Each app's sources, package.json and package-lock.json live in test/frameworks/apps/<name>/.
 * The cache folder is <cache>/<name>-<hash>, the hash covering every committed file of the
 * app and the Node major: a changed lockfile or source gets a fresh folder, an unchanged one
 * is reused between runs (a marker file written last says the install and build finished).
 * <cache> is $HITLESS_FRAMEWORKS_CACHE, else $XDG_CACHE_HOME/hitless-test-frameworks,
 * else ~/.cache/hitless-test-frameworks.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { root } from '../helpers/master.js';

export interface PreparedApp {
  dir: string;
  /** Why the app is not available (the test is skipped with this reason). */
  skip?: string;
  /** Seconds spent installing and building now (0 when the cache was reused). */
  installSeconds: number;
  buildSeconds: number;
}

const MARKER = '.hitless-prepared.json';
const INSTALL_TIMEOUT_MS = 10 * 60_000;

export function cacheRoot(): string {
  const env = process.env;
  if (env.HITLESS_FRAMEWORKS_CACHE) return env.HITLESS_FRAMEWORKS_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hitless-test-frameworks');
}

function files(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    });
}

/** The cache key of an app: its committed files and the Node major that builds and runs it. */
export function appHash(source: string): string {
  const hash = createHash('sha256').update(`node ${process.versions.node.split('.')[0]}\n`);
  for (const file of files(source)) hash.update(`${relative(source, file)}\n`).update(readFileSync(file));
  return hash.digest('hex').slice(0, 12);
}

function run(dir: string, argv: string[]): { ok: boolean; seconds: number; output: string } {
  const started = performance.now();
  const [file, ...args] = argv as [string, ...string[]];
  const r = spawnSync(file, args, {
    cwd: dir,
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', npm_config_update_notifier: 'false' },
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
  return { ok: r.status === 0, seconds: (performance.now() - started) / 1000, output };
}

/** Undefined when the npm registry answers (`npm ping`); otherwise why it does not. */
function registryProblem(): string | undefined {
  const r = spawnSync('npm', ['ping'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0) return undefined;
  const why = (r.stderr ?? '').split('\n').find((l) => /reason:|^npm error code/.test(l)) ?? String(r.error ?? `exit ${String(r.status)}`);
  return `the npm registry is unreachable (npm ping: ${why.replace(/^npm error\s*/, '').trim()})`;
}

/**
 * Installs (npm ci) and builds the app `name` once, then reuses it. `build` is the
 * framework's own build command, run in the app folder.
 */
export function prepareApp(name: string, build: string[]): PreparedApp {
  const source = join(root, 'test', 'frameworks', 'apps', name);
  const dir = join(cacheRoot(), `${name}-${appHash(source)}`);
  if (existsSync(join(dir, MARKER))) return { dir, installSeconds: 0, buildSeconds: 0 };
  const problem = registryProblem();
  if (problem !== undefined) return { dir, skip: problem, installSeconds: 0, buildSeconds: 0 };
  // A folder without the marker is a run that did not finish: start over. The build happens
  // in place because some builds record their absolute folder (Next.js does).
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(source, dir, { recursive: true });
  const install = run(dir, ['npm', 'ci', '--no-audit', '--no-fund']);
  if (!install.ok) throw new Error(`npm ci failed for the ${name} test app in ${dir}:\n${install.output.slice(-4000)}`);
  const built = run(dir, build);
  if (!built.ok) throw new Error(`${build.join(' ')} failed for the ${name} test app in ${dir}:\n${built.output.slice(-4000)}`);
  const timing = { installSeconds: Math.round(install.seconds), buildSeconds: Math.round(built.seconds) };
  writeFileSync(join(dir, MARKER), JSON.stringify({ ...timing, node: process.version, at: new Date().toISOString() }) + '\n');
  return { dir, ...timing };
}
