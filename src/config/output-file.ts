/**
 * Files the master or the CLI is told to write where the user chose (the pid file,
 * `--log-file`): their folder is created when missing, as the run dir and a unix socket's
 * folder are, and a path that cannot be written fails at once with an error that names the
 * setting, before anything binds or starts, not midway with a bare ENOENT.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
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
