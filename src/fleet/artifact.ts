/**
 * The artifact a deploy ships: a release archive, checked and hashed locally once. The
 * hosts get the same bytes and check the same sha256 on arrival.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { HitlessError, isHitlessError } from '../errors.js';
import { checkArchive, safeExtract } from '../release/extract.js';
import { hashTree } from '../release/hash.js';

const ARCHIVE = /\.(tgz|tar\.gz|tar)$/i;
const PACK = 'pack the build first: `tar -czf app.tgz -C build .`';

export interface Artifact {
  path: string;
  /** `.tgz`, `.tar.gz` or `.tar`: the remote copy keeps it so `hitless release` knows it is an archive. */
  extension: string;
  bytes: number;
  sha256: string;
}

/**
 * Checks that `path` is an archive `hitless release` accepts and hashes it.
 *
 * @throws HitlessError ERR_USAGE for a missing file, a folder, another kind of file or an
 * archive tar cannot read; ERR_RELEASE_UNSAFE_ARCHIVE for an entry that would escape.
 * @example
 * const a = await readArtifact('build/app.tgz'); // { extension: '.tgz', bytes: 12345, sha256: '3f9a…' }
 */
export async function readArtifact(path: string): Promise<Artifact> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new HitlessError('ERR_USAGE', `artifact ${path} does not exist; ${PACK}`);
  const extension = ARCHIVE.exec(path)?.[0];
  if (!st.isFile() || extension === undefined) {
    throw new HitlessError('ERR_USAGE', `artifact ${path} is not a .tgz, .tar.gz or .tar file (\`hitless release\` on each host extracts it); ${PACK}`);
  }
  await checkReleasable(path);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return { path, extension: extension.toLowerCase(), bytes: st.size, sha256: hash.digest('hex') };
}

/**
 * Lists the archive as `hitless release` will on each host: a file that only looks like an
 * archive (by its name) or holds an unsafe entry is refused here, before the preflight (and
 * so by --dry-run too), rather than by the canary host after its upload.
 */
async function checkReleasable(path: string): Promise<void> {
  try {
    await checkArchive(path, `artifact ${path}`);
  } catch (err) {
    if (isHitlessError(err, 'ERR_RELEASE_SOURCE')) {
      const why = err.cause instanceof Error ? err.cause.message : String(err.cause);
      throw new HitlessError('ERR_USAGE', `artifact ${path} is not a readable .tgz/.tar archive (${why}); ${PACK}`, { cause: err });
    }
    if (isHitlessError(err, 'ERR_RELEASE_UNSAFE_ARCHIVE')) {
      throw new HitlessError(err.code, `artifact ${path}: ${err.message}; \`hitless release\` on each host would refuse it: ${PACK}`, { cause: err, details: err.details });
    }
    throw err;
  }
}

/**
 * The content hash `hitless release` records for what `path` unpacks to (release/hash.ts):
 * extracted into a temp folder the same way, hashed, removed.
 *
 * @example
 * await artifactContentHash('build/app.tgz'); // '9c1e…', as releases/.hitless-state.json records it
 */
export async function artifactContentHash(path: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-deploy-hash-'));
  try {
    await safeExtract(path, join(dir, 'tree'));
    return (await hashTree(join(dir, 'tree'))).hash;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The archive extension of a file name (`.tgz`, `.tar.gz`, `.tar`), lower-cased; undefined
 * for another name.
 *
 * @example
 * archiveExtension('build-7.TGZ'); // '.tgz'
 */
export function archiveExtension(name: string): string | undefined {
  return ARCHIVE.exec(name)?.[0].toLowerCase();
}

/**
 * Where the artifact lands on a host: one file per release and host, so hosts that share
 * a folder (NFS, or several app folders on one machine) never write over each other.
 *
 * @example
 * remoteArtifactPath('/tmp', 'v2', 'app1', '.tgz'); // '/tmp/hitless-deploy-v2-app1.tgz'
 */
export function remoteArtifactPath(uploadDir: string, id: string, host: string, extension: string): string {
  return posix.join(uploadDir, `hitless-deploy-${id}-${host.replace(/[^A-Za-z0-9._-]/g, '_')}${extension}`);
}

/**
 * Bytes for progress lines, in SI units.
 *
 * @example
 * formatBytes(12_345); // '12.3 kB'
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB'];
  let n = bytes / 1000;
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u += 1;
  }
  return `${n.toFixed(1)} ${units[u]}`;
}
