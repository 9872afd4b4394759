/**
 * What `hitless check` can tell about the worker command without starting it: a program
 * that is not on PATH (or not executable), and a Node entry file that does not exist. The
 * configuration is valid either way (`hitless start` under systemd may have another PATH,
 * a release may bring the file), so these are warnings: `start` would fail with
 * ERR_COMMAND_NOT_FOUND or the worker's own "Cannot find module".
 */
import { accessSync, constants, statSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';

/** The parts of the configuration the check reads. */
export interface CommandToCheck {
  command: string[];
  /** The workers' folder (relative program paths and entry files are looked up there). */
  cwd: string;
  /** The workers' own variables: a PATH there is the one their command is looked up in. */
  env: Record<string, string>;
}

function executable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where `program` would run from: undefined when nothing on PATH (or at its path) can run.
 *
 * @example
 * locate('systemd-notify', process.cwd(), process.env.PATH ?? ''); // '/usr/bin/systemd-notify'
 */
export function locate(program: string, cwd: string, path: string): string | undefined {
  if (program.includes('/')) {
    const full = resolve(cwd, program);
    return executable(full) ? full : undefined;
  }
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const full = join(isAbsolute(dir) ? dir : resolve(cwd, dir), program);
    if (executable(full)) return full;
  }
  return undefined;
}

/** `node [node options…] <file>`: the file, when the words say which. */
function nodeEntry(command: string[]): string | undefined {
  const [program = '', ...args] = command;
  if (!/^node(js)?(\d+)?$/.test(basename(program))) return undefined;
  // Options that take the next word as their value.
  const withValue = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '--env-file', '--conditions', '-C', '--input-type']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a === '-' || a === '--test') return undefined;
    if (withValue.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a;
  }
  return undefined;
}

/**
 * The warnings for `config`'s command, empty when it looks runnable. `pathEnv` is the PATH
 * of the process that would start the master (the workers inherit it unless `env` sets one).
 *
 * @example
 * commandWarnings({ command: ['nodee', 'server.js'], cwd: '/srv/app', env: {} }, process.env.PATH);
 * // ['command: "nodee" is not found on PATH …']
 */
export function commandWarnings(config: CommandToCheck, pathEnv: string | undefined): string[] {
  const [program] = config.command;
  if (program === undefined) return [];
  const path = config.env.PATH ?? pathEnv ?? '';
  if (locate(program, config.cwd, path) === undefined) {
    // Each folder once: npx puts node_modules/.bin on PATH twice, which made a long line longer.
    const shown = [...new Set(path.split(delimiter).filter(Boolean))].join(delimiter);
    const where = program.includes('/') ? `at ${resolve(config.cwd, program)}` : `on PATH (${shown || 'empty'})`;
    return [`command: ${JSON.stringify(program)} is not found ${where}, or is not executable: \`hitless start\` from here would fail ` +
      '(ERR_COMMAND_NOT_FOUND); check "command", and PATH where the master runs (a service manager may give it another)'];
  }
  const entry = nodeEntry(config.command);
  if (entry !== undefined && !existsFile(resolve(config.cwd, entry))) {
    return [`command: node's entry file ${JSON.stringify(entry)} does not exist in the workers' folder ${config.cwd}: ` +
      'every worker would exit with "Cannot find module"; check "command" and "cwd" (a release may still bring it)'];
  }
  return [];
}

/** Node finds `server` as server.js, a folder through its package.json or index.js. */
function existsFile(path: string): boolean {
  return ['', '.js', '.cjs', '.mjs', '.json', '.node'].some((ext) => {
    try {
      statSync(path + ext);
      return true;
    } catch {
      return false;
    }
  });
}
