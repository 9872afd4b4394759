/**
 * One deploy at a time: a lock file beside the config file, created with O_EXCL and
 * holding who took it (user, machine, pid, release, since when). A second deploy is told
 * exactly that. A lock left by a deploy that died on this machine (its pid is gone) is
 * taken over; one from another machine (a shared checkout) cannot be judged and is kept.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { HitlessError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import { processAlive } from '../process-alive.js';

export const DEPLOY_LOCK_FILE = '.hitless-deploy.lock';

export interface DeployLockInfo {
  pid: number;
  user: string;
  machine: string;
  id: string;
  artifact: string;
  startedAt: number;
}

/**
 * The lock file of deploys configured in `configPath`: beside it.
 *
 * @example
 * deployLockPath('/repo/hitless.json'); // '/repo/.hitless-deploy.lock'
 */
export function deployLockPath(configPath: string): string {
  return join(dirname(configPath), DEPLOY_LOCK_FILE);
}

function whoAmI(id: string, artifact: string, now: number): DeployLockInfo {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers with a bare uid)
  }
  return { pid: process.pid, user, machine: hostname(), id, artifact, startedAt: now };
}

async function readHolder(path: string): Promise<DeployLockInfo | undefined> {
  try {
    const data = JSON.parse(await readFile(path, 'utf8')) as Partial<DeployLockInfo>;
    return typeof data.pid === 'number' ? (data as DeployLockInfo) : undefined;
  } catch {
    return undefined;
  }
}

/** A deploy lock held by this process. */
export interface DeployLock {
  release(): Promise<void>;
  /** The deploy that died holding the lock before (its pid is gone), when this one took it over. */
  stale: DeployLockInfo | undefined;
}

/**
 * Takes the deploy lock; resolves with its release function and, when the lock was left
 * by a deploy that died (SIGKILL, a crash), who that was: its uploads may be left on the
 * hosts.
 *
 * @throws HitlessError ERR_DEPLOY_BUSY naming the holder.
 * @example
 * const lock = await acquireDeployLock('/repo/.hitless-deploy.lock', { id: 'v2', artifact: 'app.tgz' });
 * try { … } finally { await lock.release(); }
 */
export async function acquireDeployLock(path: string, what: { id: string; artifact: string }, now: () => number = Date.now): Promise<DeployLock> {
  const me = whoAmI(what.id, what.artifact, now());
  let stale: DeployLockInfo | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, JSON.stringify(me) + '\n', { flag: 'wx' });
      return { release: () => unlink(path).catch(() => {}), stale };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(path);
    if (holder && holder.machine === me.machine && !processAlive(holder.pid)) {
      stale = holder;
      await unlink(path).catch(() => {}); // stale: that deploy died
      continue;
    }
    const who = holder
      ? `release ${holder.id} (${holder.artifact}) by ${holder.user} on ${holder.machine}, pid ${holder.pid}, started ${formatDuration(Math.max(0, now() - holder.startedAt))} ago`
      : 'its holder could not be read';
    throw new HitlessError('ERR_DEPLOY_BUSY', `another deploy is running: ${who}; wait for it to finish (lock file ${path}; remove it only if that deploy is gone)`, {
      details: { lock: path, holder },
    });
  }
  throw new HitlessError('ERR_DEPLOY_BUSY', `cannot take the deploy lock ${path}; remove it if no deploy is running`, { details: { lock: path } });
}
