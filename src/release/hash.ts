/**
 * The content hash that identifies a build: sha256 over every entry's relative path,
 * type, file mode (permission bits) and bytes, and symlink targets, in sorted order.
 * Two uploads of the same build hash the same wherever they were unpacked, so a
 * re-upload is recognised and skipped.
 *
 * Folder modes are left out on purpose: folders that an archive implies without
 * listing them get the umask's mode, which would make equal builds differ.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeHash {
  /** sha256, hex. */
  hash: string;
  /** Total bytes of regular files. */
  bytes: number;
  files: number;
}

/**
 * Hashes the tree under `root`.
 *
 * @example
 * const { hash } = await hashTree('/srv/app/releases/v2');
 */
export async function hashTree(root: string): Promise<TreeHash> {
  const h = createHash('sha256');
  const totals = { bytes: 0, files: 0 };
  await walk(root, '', h, totals);
  return { hash: h.digest('hex'), ...totals };
}

async function walk(root: string, rel: string, h: Hash, totals: { bytes: number; files: number }): Promise<void> {
  // Sort by code unit, not locale: the order must not depend on the machine.
  const names = (await readdir(join(root, rel))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    const relPath = rel === '' ? name : `${rel}/${name}`;
    const abs = join(root, relPath);
    const st = await lstat(abs);
    if (st.isDirectory()) {
      h.update(`d\0${relPath}\0`);
      await walk(root, relPath, h, totals);
    } else if (st.isSymbolicLink()) {
      h.update(`l\0${relPath}\0${await readlink(abs)}\0`);
    } else if (st.isFile()) {
      h.update(`f\0${relPath}\0${(st.mode & 0o777).toString(8)}\0${st.size}\0`);
      for await (const chunk of createReadStream(abs)) h.update(chunk as Buffer);
      totals.bytes += st.size;
      totals.files += 1;
    } else {
      h.update(`o\0${relPath}\0`);
    }
  }
}

/**
 * Disk use of a tree in bytes (regular files and links; what `hitless releases` shows).
 *
 * @example
 * await treeSize('/srv/app/releases/v2'); // 1048576
 */
export async function treeSize(root: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const abs = join(root, entry.name);
    if (entry.isDirectory()) total += await treeSize(abs);
    else total += (await lstat(abs)).size;
  }
  return total;
}
