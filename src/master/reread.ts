/**
 * Reading the master's configuration again, for a reload: `hitless check --json` run with
 * the master's own `hitless start` arguments, in its working directory and environment,
 * so the file is found, merged with the flags and validated exactly as at start, and the
 * schema validator (zod, ~13 MB resident) never loads into the long-lived master.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HitlessError, type HitlessErrorCode } from '../errors.js';
import type { MasterConfig } from '../config/types.js';
import { findConfigFile } from '../config/file.js';
import { formatDuration } from '../config/duration.js';

/** The master's own `hitless start` command line, to read the configuration again from. */
export interface ConfigSource {
  /** `hitless start` arguments as given: flags, then `--` and the worker command. */
  argv: string[];
  /** The working directory `hitless start` ran in (relative --config and flag paths). */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** {@link fingerprintConfig} as `hitless start` took it before validating (reloads skip an unchanged file). */
  fingerprint?: string | undefined;
}

/** A validation child that takes longer than this is killed and the reload refused. */
export const READ_TIMEOUT_MS = 60_000;
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/**
 * Runs `hitless check --json <argv>` and resolves with the normalised configuration.
 *
 * @throws HitlessError with the validator's code and one-line message (ERR_CONFIG_INVALID,
 *   ERR_CONFIG_PARSE, ERR_CONFIG_NOT_FOUND); ERR_RELOAD_FAILED when the check was killed or
 *   timed out before it answered.
 * @example
 * const next = await readConfig({ argv: ['--config', 'hitless.json'], cwd: '/srv/app', env: process.env });
 */
export function readConfig(source: ConfigSource, timeoutMs = READ_TIMEOUT_MS): Promise<MasterConfig> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'check', '--json', ...source.argv], {
      cwd: source.cwd, env: source.env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new HitlessError('ERR_CONFIG_INVALID', `cannot run the configuration check: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let answer: { ok?: boolean; config?: MasterConfig; error?: { code?: string; message?: string; problems?: string[] } } | undefined;
      try {
        answer = JSON.parse(out) as typeof answer;
      } catch {
        // not JSON: the check itself broke; its stderr says why
      }
      if (answer?.ok === true && answer.config) return resolve(answer.config);
      // Killed before it answered (the OOM killer, an operator) or stuck: the configuration
      // was never read, which says nothing about it (not ERR_CONFIG_INVALID: exit 2 tells a
      // deploy script its configuration is wrong).
      if (answer === undefined && (timedOut || signal !== null)) {
        const why = timedOut
          ? `did not answer within ${formatDuration(timeoutMs)} and was stopped`
          : `(pid ${String(child.pid)}) was killed by ${String(signal)}${signal === 'SIGKILL' ? ' (out of memory?)' : ''} before it answered`;
        return reject(new HitlessError('ERR_RELOAD_FAILED', `the configuration check ${why}: the configuration was not read and nothing changed; try the reload again`));
      }
      const last = err.trim().split('\n').findLast((l) => l.startsWith('hitless: '))?.replace(/^hitless: /, '');
      const message = answer?.error?.message ?? (last || `the configuration check ended with ${signal ?? `code ${String(code)}`}`);
      const known = answer?.error?.code as HitlessErrorCode | undefined;
      const problems = answer?.error?.problems;
      reject(new HitlessError(known ?? 'ERR_CONFIG_INVALID', message, Array.isArray(problems) ? { details: { problems } } : {}));
    });
  });
}

/**
 * What a configuration read depends on besides the master's fixed argv, cwd and env: the
 * config file's bytes (read through its path, so a symlink swap counts) or, with no file,
 * the fact that `hitless.json` is still absent from `cwd`. Undefined when it cannot be
 * read (then only a validation can say why).
 *
 * @example
 * const before = fingerprintConfig('/srv/app/hitless.json', '/srv/app'); // taken before validating
 */
export function fingerprintConfig(path: string | undefined, cwd: string): string | undefined {
  try {
    if (path) return `file:${readFileSync(path, 'latin1')}`;
    return existsSync(resolve(cwd, 'hitless.json')) ? undefined : 'no file';
  } catch {
    return undefined;
  }
}

/**
 * {@link readConfig}, skipped while what it reads is unchanged, and never run for a master
 * started without a file: the validation child costs ~0.4 s of CPU, several times a whole
 * reload of a small app, and most reloads (a code deploy) do not touch the configuration. `start` is the configuration the master started
 * with and the fingerprint `hitless start` took before validating it. A fingerprint is
 * always taken *before* the validation it stands for, so an edit made while one runs only
 * makes the next reload validate again.
 *
 * @example
 * const read = cachedReader(source.cwd, { config, fingerprint });
 * await read(source); // file unchanged since start: that configuration, no child
 */
export function cachedReader(
  cwd: string,
  start: { config: MasterConfig; fingerprint: string | undefined },
  read: (s: ConfigSource) => Promise<MasterConfig> = readConfig,
): (s: ConfigSource) => Promise<MasterConfig> {
  // A master started with flags only: its flags cannot change, so there is nothing to read
  // again, and a hitless.json that appeared since is not read at all (CONFIG.md: ignored;
  // an invalid one must not refuse its reloads). Only its path is given, for the one
  // `configPath … NOT APPLIED` line.
  if (start.config.configPath === undefined) {
    return () => {
      const appeared = findConfigFile(undefined, cwd);
      return Promise.resolve({ ...structuredClone(start.config), ...(appeared === undefined ? {} : { configPath: appeared }) });
    };
  }
  let path: string | undefined = start.config.configPath;
  let last = start.fingerprint === undefined ? undefined : { fingerprint: start.fingerprint, config: structuredClone(start.config) };
  return async (source) => {
    const before = fingerprintConfig(path, cwd);
    if (last && before !== undefined && before === last.fingerprint) return structuredClone(last.config);
    // The check would say what it says to a person with no file (run `hitless check` with
    // flags): the master's own file is what is missing.
    if (path !== undefined && !existsSync(path)) {
      throw new HitlessError('ERR_CONFIG_NOT_FOUND', `${path}, the configuration file this master was started from, is gone: put it back, then reload`);
    }
    const config = await read(source);
    last = before === undefined ? undefined : { fingerprint: before, config: structuredClone(config) };
    path = config.configPath;
    return config;
  };
}
