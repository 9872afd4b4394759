/**
 * Which master a client command (or a release command) talks to: its run dir, found by the
 * same rule `hitless start` follows. Zod-free: client commands must not load the schema.
 */
import { dirname, resolve } from 'node:path';
import type { HitlessError } from '../errors.js';
import { findConfigFile, readConfigFile, readConfigFileOr } from './file.js';
import { resolveRunDir } from './rundir.js';

/**
 * The run dir of the master a client command talks to: --run-dir, else the config file's
 * `runDir` key, else the default derived from the app folder (the config file's folder,
 * or the working directory) — the same rule `hitless start` follows.
 *
 * A config file that exists but cannot be parsed (an edit in progress, a missing comma) does
 * not keep a client from its master: the master keeps the configuration it has, and `stop`,
 * `status` or `reload` (which the master then refuses, naming the error) must still reach it.
 * The file's problem goes to `unreadable` and the default run dir is used; a `runDir` key in
 * the broken file is then found by the app folder instead (control/find.ts).
 *
 * @example
 * const runDir = locateRunDir({ config: values.config, runDir: values['run-dir'] });
 */
export function locateRunDir(options: {
  config?: string | undefined; runDir?: string | undefined; cwd?: string; env?: NodeJS.ProcessEnv;
  unreadable?: (err: HitlessError) => void;
}): string {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  if (options.runDir !== undefined) return resolveRunDir(cwd, resolve(cwd, options.runDir), env);
  const configPath = findConfigFile(options.config, cwd);
  if (!configPath) return resolveRunDir(cwd, undefined, env);
  const appDir = dirname(configPath);
  const file = options.unreadable === undefined ? readConfigFile(configPath) : readConfigFileOr(configPath, options.unreadable);
  const runDir = typeof file.runDir === 'string' && file.runDir ? resolve(appDir, file.runDir) : undefined;
  return resolveRunDir(appDir, runDir, env);
}
