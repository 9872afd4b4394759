/**
 * What a deploy that died leaves behind. A deploy killed with SIGKILL (or crashed) keeps
 * its lock file (taken over by the next deploy on this machine, lock.ts) and may leave its
 * upload, `hitless-deploy-<id>-<host>.<ext>`, in the hosts' upload folders: the next deploy
 * removes exactly those files, known from the dead deploy's lock.
 */
import { archiveExtension, remoteArtifactPath } from './artifact.js';
import type { DeployLockInfo } from './lock.js';
import { cleanupScript, REMOVED_MARKER } from './scripts.js';
import { lastLine, type RunRemote } from './transport.js';
import type { FleetConfig, FleetEvent } from './types.js';

/**
 * A deploy that died holding the lock (SIGKILL, a crash) may have left its upload on the
 * hosts: remove `hitless-deploy-<its id>-<host>.<ext>` (and the `.part`) from each upload
 * folder. Only that deploy's files: another app's deploy may share the folder.
 *
 * @example
 * if (lock.stale) await removeLeftovers(config, lock.stale, run, emit);
 */
export async function removeLeftovers(config: FleetConfig, dead: DeployLockInfo, run: RunRemote, emit: (e: FleetEvent) => void): Promise<void> {
  emit({ level: 'warn', text: `the deploy of ${dead.id} (pid ${dead.pid}, by ${dead.user}) died holding the lock; removing what it left in the upload folders` });
  const extensions = archiveExtension(dead.artifact) !== undefined ? [archiveExtension(dead.artifact) as string] : ['.tgz', '.tar.gz', '.tar'];
  let found = 0;
  await Promise.all(config.hosts.map(async (host) => {
    const files = extensions.flatMap((ext) => {
      const file = remoteArtifactPath(config.uploadDir, dead.id, host.name, ext);
      return [file, `${file}.part`];
    });
    const r = await run(host, cleanupScript(files));
    const removed = r.stdout.split('\n').filter((l) => l.startsWith(REMOVED_MARKER)).map((l) => l.slice(REMOVED_MARKER.length));
    found += removed.length;
    for (const file of removed) emit({ level: 'info', host: host.name, text: `removed ${file}, left by the deploy of ${dead.id}` });
    if (r.code !== 0) emit({ level: 'warn', host: host.name, text: `could not check for files left by the deploy of ${dead.id}: ${lastLine(r.stderr) || `exit ${r.code ?? r.signal}`}` });
  }));
  // The release it started on a host may have run to its end without it and removed its
  // upload (releaseScript): then there is nothing to remove, and that is said.
  if (found === 0) emit({ level: 'info', text: `none of its uploads was left (a release it started on a host removes its upload when it ends)` });
}
