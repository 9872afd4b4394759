/**
 * What the release commands need from the app's configuration, without requiring a full
 * master config (a folder used only for releases may have no `command` or `listen`):
 * the app folder (the config file's folder, else the working directory), the `release`
 * settings, and how to ask the running master to reload.
 */
import { basename, dirname } from 'node:path';
import { controlRequest } from '../control/client.js';
import { findConfigFile, readConfigFile } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { configErrorFromZod } from '../config/errors.js';
import type { ReleaseConfig } from '../config/types.js';
import type { MasterEvent, ReloadOptions, ReloadOutcome } from '../core/types.js';
import { locateRunDir } from '../config/locate.js';
import { DEFAULT_RELEASE_KEEP } from '../config/defaults.js';
import type { ReloadFn } from './deploy.js';

const releaseOnlySchema = configSchema.pick({ release: true });

export interface ReleaseContext {
  appDir: string;
  release: ReleaseConfig;
  runDir: string;
}

/**
 * Reads `--config` (or ./hitless.json when present) for the app folder and `release` key.
 *
 * @example
 * const ctx = releaseContext({ config: values.config, runDir: values['run-dir'] });
 * ctx.appDir; // '/srv/app'
 */
export function releaseContext(flags: { config?: string | undefined; runDir?: string | undefined }, cwd = process.cwd()): ReleaseContext {
  const configPath = findConfigFile(flags.config, cwd);
  const appDir = configPath ? dirname(configPath) : cwd;
  let release: ReleaseConfig = { keep: DEFAULT_RELEASE_KEEP, prepare: undefined };
  if (configPath) {
    const file = readConfigFile(configPath);
    // Validated and worded exactly as `hitless start` does (one schema, one formatter).
    const input = { release: file.release ?? {} };
    const parsed = releaseOnlySchema.safeParse(input);
    if (!parsed.success) throw configErrorFromZod(parsed.error, input, { file: flags.config ?? basename(configPath), flags: {} });
    release = { keep: parsed.data.release?.keep ?? DEFAULT_RELEASE_KEEP, prepare: parsed.data.release?.prepare };
  }
  return { appDir, release, runDir: locateRunDir({ config: flags.config, runDir: flags.runDir, cwd }) };
}

/**
 * A {@link ReloadFn} that asks the master of `runDir` over the control socket (with
 * `options`, e.g. `{ strategy: 'canary' }` for `hitless release --canary`).
 *
 * @example
 * const reload = controlReload(ctx.runDir, (e) => progress(e));
 * await goLive(id, { appDir, reason: 'rollback', reload });
 */
export function controlReload(runDir: string, onEvent?: (e: MasterEvent) => void, options: ReloadOptions = {}): ReloadFn {
  return async (reason) => (await controlRequest(runDir, 'reload', { reason, ...options }, onEvent ? { onEvent } : {})) as ReloadOutcome;
}
