/**
 * Files the master or the CLI is told to write where the user chose (the pid file,
 * `--log-file`): their folder is created when missing, as the run dir and a unix socket's
 * folder are, and a path that cannot be written fails at once with an error that names the
 * setting, before anything binds or starts, not midway with a bare ENOENT.
 */
import { accessSync, closeSync, constants, lstatSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HitlessError } from '../errors.js';

/**
 * Makes sure `path` can be created or appended to: creates its folder when missing, checks
 * it is writable and that `path` is not a folder. Throws ERR_FILE_WRITE naming `setting`.
 *
 * @example
 * prepareOutputFile('/run/myapp/master.pid', 'pidFile (--pid-file)');
 */
export function prepareOutputFile(path: string, setting: string): void {
  const folder = dirname(path);
  const fail = (why: string): never => {
    throw new HitlessError('ERR_FILE_WRITE', `${setting}: cannot write ${path}: ${why}`, { details: { path } });
  };
  try {
    mkdirSync(folder, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'EEXIST' || code === 'ENOTDIR') fail(`${folder} is not a folder (a file is in the way); choose another path`);
    fail(`the folder ${folder} cannot be created (${code}); create it with write access for this user, or choose a path in a writable folder`);
  }
  try {
    accessSync(folder, constants.W_OK | constants.X_OK);
  } catch {
    fail(`this user cannot create files in ${folder}; give it write access, or choose a path in a writable folder`);
  }
  let isFolder = false;
  try {
    isFolder = statSync(path).isDirectory();
  } catch {
    // not there yet: it will be created
  }
  if (isFolder) fail('that is a folder; give the path of a file');
}

/**
 * Makes the folder of the worker log files (`logs.dir`) ready, or says why it cannot be:
 * creates what is missing one level at a time (Node's recursive mkdir spins forever on a
 * path it can never create, such as one under /proc) and opens `file` in it for appending,
 * which finds what a permission check does not (a read-only or immutable folder, as root).
 * Throws ERR_FILE_WRITE naming `setting`; with `create: false` (hitless check) it creates
 * nothing and only says what it can see.
 *
 * @example
 * prepareFolder('/srv/app/logs', 'workers.log', 'logs.dir');
 */
export function prepareFolder(dir: string, file: string, setting: string, create = true): void {
  const fail = (why: string): never => {
    throw new HitlessError('ERR_FILE_WRITE', `${setting}: cannot write ${join(dir, file)}: ${why}`, { details: { path: dir } });
  };
  // From the nearest folder that exists down to `dir`.
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    let st;
    try {
      st = lstatSync(at);
    } catch {
      const up = dirname(at);
      if (up === at) break;
      missing.unshift(at);
      at = up;
      continue;
    }
    if (!st.isDirectory() && !(st.isSymbolicLink() && isFolder(at))) fail(`${at} is not a folder (a file is in the way); choose another folder`);
    break;
  }
  if (!create) {
    try {
      accessSync(missing.length ? at : dir, constants.W_OK | constants.X_OK);
    } catch {
      fail(`this user cannot create files in ${missing.length ? at : dir}; give it write access, or choose another folder`);
    }
    return;
  }
  for (const folder of missing) {
    try {
      mkdirSync(folder);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'EEXIST') fail(`the folder ${folder} cannot be created (${code}); create it with write access for this user, or choose another folder`);
    }
  }
  try {
    closeSync(openSync(join(dir, file), 'a'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    fail(`${code === 'EISDIR' ? 'that is a folder' : `it cannot be opened for writing (${code})`}; give this user write access to ${dir}, or choose another folder`);
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
