/**
 * Which master a client command (or a release command) talks to: its run dir, found by the
 * same rule `hitless start` follows. Zod-free: client commands must not load the schema.
 */
import { dirname, resolve } from 'node:path';
import { findConfigFile, readConfigFile } from './file.js';
import { resolveRunDir } from './rundir.js';

/**
 * The run dir of the master a client command talks to: --run-dir, else the config file's
 * `runDir` key, else the default derived from the app folder (the config file's folder,
 * or the working directory) — the same rule `hitless start` follows.
 *
 * @example
 * const runDir = locateRunDir({ config: values.config, runDir: values['run-dir'] });
 */
export function locateRunDir(options: { config?: string | undefined; runDir?: string | undefined; cwd?: string; env?: NodeJS.ProcessEnv }): string {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  if (options.runDir !== undefined) return resolveRunDir(cwd, resolve(cwd, options.runDir), env);
  const configPath = findConfigFile(options.config, cwd);
  if (!configPath) return resolveRunDir(cwd, undefined, env);
  const appDir = dirname(configPath);
  const file = readConfigFile(configPath);
  const runDir = typeof file.runDir === 'string' && file.runDir ? resolve(appDir, file.runDir) : undefined;
  return resolveRunDir(appDir, runDir, env);
}
