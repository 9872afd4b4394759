/**
 * Files the master or the CLI is told to write where the user chose (the pid file,
 * `--log-file`): their folder is created when missing, as the run dir and a unix socket's
 * folder are, and a path that cannot be written fails at once with an error that names the
 * setting, before anything binds or starts, not midway with a bare ENOENT.
 */
import { accessSync, closeSync, constants, lstatSync, mkdirSync, openSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HitlessError } from '../errors.js';

/**
 * Makes sure `path` can be created or appended to: creates its folder when missing, checks
 * it is writable and that `path` is not a folder. Throws ERR_FILE_WRITE naming `setting`.
 *
 * @example
 * prepareOutputFile('/run/myapp/master.pid', 'pidFile (--pid-file)');
 */
export function prepareOutputFile(path: string, setting: string, create = true): void {
  const folder = dirname(path);
  const fail = (why: string): never => {
    throw new HitlessError('ERR_FILE_WRITE', `${setting}: cannot write ${path}: ${why}`, { details: { path } });
  };
  if (!create) {
    // hitless check: what the start would find, creating nothing.
    checkCreatable(folder, fail, { blocked: 'choose another path', elsewhere: 'choose a path in a writable folder' });
    if (isFolder(path)) fail('that is a folder; give the path of a file');
    return;
  }
  const code = makeFolders(folder);
  if (code === 'EEXIST' || code === 'ENOTDIR') fail(`${folder} is not a folder (a file is in the way); choose another path`);
  if (code !== undefined) fail(`the folder ${folder} cannot be created (${code}); create it with write access for this user, or choose a path in a writable folder`);
  try {
    accessSync(folder, constants.W_OK | constants.X_OK);
  } catch (err) {
    fail(notWritable(err, folder, 'choose a path in a writable folder'));
  }
  if (isFolder(path)) fail('that is a folder; give the path of a file');
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
  if (!create) return checkCreatable(dir, fail, { blocked: 'choose another folder', elsewhere: 'choose another folder' });
  const walk = walkUp(dir);
  if ('blocked' in walk) fail(`${walk.blocked} is not a folder (a file is in the way); choose another folder`);
  for (const folder of (walk as { missing: string[] }).missing) {
    const code = makeFolder(folder);
    if (code !== undefined) fail(`the folder ${folder} cannot be created (${code}); create it with write access for this user, or choose another folder`);
  }
  try {
    closeSync(openSync(join(dir, file), 'a'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    fail(`${code === 'EISDIR' ? 'that is a folder' : `it cannot be opened for writing (${code})`}; give this user write access to ${dir}, or choose another folder`);
  }
}

/**
 * What `hitless check` can tell about creating `folder` and files in it, creating nothing:
 * a file in the way, a kernel file system (access(2) passes there as root), a folder this
 * user cannot write. Each is said through `fail`, with `instead` as the fix.
 */
function checkCreatable(folder: string, fail: (why: string) => never, instead: { blocked: string; elsewhere: string }): void {
  const walk = walkUp(folder);
  if ('blocked' in walk) fail(`${walk.blocked} is not a folder (a file is in the way); ${instead.blocked}`);
  const { existing } = walk as { existing: string };
  const kernel = kernelFileSystem(existing);
  if (kernel) fail(`${existing} is on ${kernel}, a kernel file system where no file or folder can be made; ${instead.elsewhere}`);
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (err) {
    fail(notWritable(err, existing, instead.elsewhere));
  }
}

/**
 * Why files cannot be made in `folder`, from access(2)'s error: a read-only mount (EROFS),
 * which no permission fixes, or this user's permissions.
 *
 * @example
 * notWritable({ code: 'EROFS' }, '/srv/logs', 'choose another folder');
 * // '/srv/logs is on a read-only file system; remount it read-write, or choose another folder'
 */
export function notWritable(err: unknown, folder: string, elsewhere: string): string {
  return (err as NodeJS.ErrnoException).code === 'EROFS'
    ? `${folder} is on a read-only file system; remount it read-write, or ${elsewhere}`
    : `this user cannot create files in ${folder}; give it write access, or ${elsewhere}`;
}

/**
 * From `dir` up to the nearest path that exists: the folders missing on the way (top
 * first) and that existing folder, or the path that is in the way (not a folder).
 */
function walkUp(dir: string): { missing: string[]; existing: string } | { blocked: string } {
  const missing: string[] = [];
  for (let at = dir; ; ) {
    let st;
    try {
      st = lstatSync(at);
    } catch {
      const up = dirname(at);
      if (up === at) return { missing, existing: at };
      missing.unshift(at);
      at = up;
      continue;
    }
    return st.isDirectory() || (st.isSymbolicLink() && isFolder(at)) ? { missing, existing: at } : { blocked: at };
  }
}

/** mkdir(2) of one folder; its error code, or undefined when it was made or is there. */
function makeFolder(folder: string): string | undefined {
  try {
    mkdirSync(folder);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return code === 'EEXIST' ? undefined : code;
  }
}

/**
 * Creates `dir` and what is missing above it one level at a time: Node's recursive mkdir
 * spins forever on a path it can never create (one under /proc). Returns the error code of
 * the first that failed (ENOTDIR: a file is in the way), or undefined.
 */
function makeFolders(dir: string): string | undefined {
  const walk = walkUp(dir);
  if ('blocked' in walk) return 'ENOTDIR';
  for (const folder of walk.missing) {
    const code = makeFolder(folder);
    if (code !== undefined) return code;
  }
  return undefined;
}

/** statfs(2) types of the kernel's own file systems, where mkdir and creat fail even as root. */
const KERNEL_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x63677270, 'cgroup2'], [0x27e0eb, 'cgroup'],
  [0x64626720, 'debugfs'], [0x73636673, 'securityfs'], [0x74726163, 'tracefs'],
]);

/**
 * The name of the kernel file system `path` is on (proc, sysfs, …), if it is on one: an
 * access(2) check passes there as root, and only creating something would tell.
 */
function kernelFileSystem(path: string): string | undefined {
  try {
    return KERNEL_FILE_SYSTEMS.get(Number(statfsSync(path).type));
  } catch {
    return undefined;
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
