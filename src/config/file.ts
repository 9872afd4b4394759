/**
 * Finding and reading hitless.json. Kept apart from the schema (config.ts) so that the
 * client commands (`hitless status`, `reload`, …), which only need the file's folder and
 * run dir, never load the validator.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { HitlessError, isHitlessError } from '../errors.js';
import { DEFAULT_CONFIG_FILE } from './defaults.js';
import { locateJsonError } from './json.js';

/** Reads and parses a JSON config file; ERR_CONFIG_PARSE carries the line and column. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new HitlessError('ERR_CONFIG_NOT_FOUND', `config file ${path} does not exist; check the --config path`);
    if (code === 'EACCES') throw unreadable(path, err);
    throw new HitlessError('ERR_CONFIG_PARSE', `cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const at = locateJsonError(text) ?? { line: 1, column: 1, reason: (err as Error).message };
    throw new HitlessError('ERR_CONFIG_PARSE', `${path}:${at.line}:${at.column}: not valid JSON: ${at.reason}`, {
      cause: err, details: { line: at.line, column: at.column },
    });
  }
  // Valid JSON, but a key given twice: JSON.parse kept the last one without a word.
  const twice = locateJsonError(text);
  if (twice !== undefined) {
    throw new HitlessError('ERR_CONFIG_PARSE', `${path}:${twice.line}:${twice.column}: ${twice.reason}`, { details: { line: twice.line, column: twice.column } });
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new HitlessError('ERR_CONFIG_PARSE', `${path}: expected a JSON object ({ "command": [...], "listen": [...] }), got ${Array.isArray(data) ? 'an array' : JSON.stringify(data)}`);
  }
  return data as Record<string, unknown>;
}

/**
 * readConfigFile for client commands, which must reach the running master whatever the file
 * says: a file that cannot be parsed (ERR_CONFIG_PARSE) gives `{}` after `unparsable` heard
 * why; every other error (a --config that does not exist) is thrown.
 */
export function readConfigFileOr(path: string, unparsable: (err: HitlessError) => void): Record<string, unknown> {
  try {
    return readConfigFile(path);
  } catch (err) {
    if (!isHitlessError(err, 'ERR_CONFIG_PARSE')) throw err;
    unparsable(err);
    return {};
  }
}

/**
 * ERR_CONFIG_PARSE for a config file this user may not read (EACCES on it or a folder above:
 * the app of a master that runs as another user), saying so and whom to run as, never
 * "does not exist".
 */
function unreadable(path: string, cause: unknown): HitlessError {
  return new HitlessError('ERR_CONFIG_PARSE',
    `config file ${path}: permission denied (this user may not read it, or may not enter a folder above it); ` +
      'run the command as the user the app and its master run as (`sudo -u <user> hitless …`), or as root',
    { cause, details: { path } });
}

/** Finds the config file: --config (must exist), else `<cwd>/hitless.json` when present. */
export function findConfigFile(configFlag: string | undefined, cwd: string): string | undefined {
  if (configFlag !== undefined) {
    const path = resolve(cwd, configFlag);
    try {
      statSync(path);
    } catch (err) {
      // There, but closed to this user: reading it says so (a client command still finds the master by its folder).
      if ((err as NodeJS.ErrnoException).code === 'EACCES') return path;
      throw new HitlessError('ERR_CONFIG_NOT_FOUND', `config file ${path} does not exist; check the --config path`);
    }
    return path;
  }
  const path = resolve(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(path) ? path : undefined;
}
