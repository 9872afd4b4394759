/**
 * Safe extraction of a release archive (.tgz / .tar.gz / .tar).
 *
 * Every entry is checked BEFORE anything is written (a first pass that only lists),
 * so a malicious archive leaves nothing behind, and tar@7's own protections are a
 * second line rather than the only one. Rejected (ERR_RELEASE_UNSAFE_ARCHIVE):
 *
 * - absolute paths and any `..` segment (tar would strip them and carry on; a release
 *   built that way is not what the user built, so we refuse instead);
 * - device files, fifos and any type other than file, folder, symlink, hard link;
 * - symlinks and hard links whose target resolves outside the release folder,
 *   resolved through the archive's own symlinks (a lexical check alone is fooled by
 *   `d/s -> ..` followed by `d/t -> s/..`);
 * - entries written through one of the archive's symlinks (`link/file`).
 *
 * After extraction the tree is walked once more for anything that is not a file,
 * folder or in-tree link.
 */
import { lstat, mkdir, readdir, readlink, realpath } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, join, relative, resolve, isAbsolute, sep } from 'node:path';
import * as tar from 'tar';
import { HitlessError } from '../errors.js';

const ALLOWED = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

interface Checked {
  type: string;
  path: string;
  link?: string;
}

function unsafe(entry: string, why: string): HitlessError {
  return new HitlessError('ERR_RELEASE_UNSAFE_ARCHIVE', `unsafe archive entry ${JSON.stringify(entry)}: ${why}`, {
    details: { entry, why },
  });
}

/** Splits an archive path into segments, rejecting absolute paths and `..`. */
function segments(raw: string, what: string, entry: string): string[] {
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[A-Za-z]:/.test(raw)) throw unsafe(entry, `${what} is absolute`);
  const parts = raw.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(entry, `${what} contains '..'`);
  return parts;
}

/**
 * Resolves `parts` (relative to the release root) through the archive's symlinks and
 * returns the resolved segments, or undefined when the path leaves the root.
 */
function resolveInTree(parts: string[], links: Map<string, string>, depth = 0): string[] | undefined {
  if (depth > 40) return undefined; // a link loop: treat as escaping
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '.' || part === '') continue;
    if (part === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(part);
    const target = links.get(out.join('/'));
    if (target === undefined) continue;
    if (target.startsWith('/')) return undefined;
    const base = out.slice(0, -1);
    const resolved = resolveInTree([...base, ...target.split('/')], links, depth + 1);
    if (resolved === undefined) return undefined;
    out.splice(0, out.length, ...resolved);
  }
  return out;
}

/**
 * An archive tar cannot read through (a truncated upload, not gzip, not tar): named, with
 * what tar or zlib said, as a bad release source rather than an unexpected error.
 */
function unreadable(name: string, err: unknown): HitlessError {
  const why = err instanceof Error ? err.message : String(err);
  return new HitlessError('ERR_RELEASE_SOURCE',
    `${name} is not a readable .tgz/.tar archive (${why}): a truncated or partial upload? Check it with \`tar tzf\` and upload it again`,
    { cause: err, details: { source: name } });
}

/** True for a tar of no entries: nothing but its zero end blocks (gzipped or not); small files only. */
function onlyZeros(file: string): boolean {
  try {
    if (statSync(file).size > 64 * 1024) return false;
    const raw = readFileSync(file);
    const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw, { maxOutputLength: 1024 * 1024 }) : raw;
    return bytes.length > 0 && bytes.every((b) => b === 0);
  } catch {
    return false;
  }
}

/** An archive with nothing to run: no entries, or folders only. */
function empty(name: string): HitlessError {
  return new HitlessError('ERR_RELEASE_SOURCE',
    `${name} holds no files (no entries, or folders only): nothing to release; check what was packed with \`tar tzf\` (pack the build's folder: tar czf app.tgz -C dist .)`,
    { details: { source: name } });
}

/**
 * Lists the archive and checks every entry; throws ERR_RELEASE_UNSAFE_ARCHIVE on the first unsafe one.
 *
 * @example
 * await checkArchive('/tmp/app.tgz'); // resolves: every entry stays inside
 */
export async function checkArchive(file: string, name: string = file): Promise<void> {
  const entries: Checked[] = [];
  try {
    await tar.t({
      file,
      strict: true,
      onReadEntry: (e) => {
        entries.push({ type: e.type, path: e.path, ...(e.linkpath ? { link: e.linkpath } : {}) });
      },
    });
  } catch (err) {
    // tar reads an archive of no entries (a `tar czf` of nothing) as an unrecognised one.
    if (entries.length === 0 && (err as { code?: string }).code === 'TAR_BAD_ARCHIVE' && onlyZeros(file)) throw empty(name);
    throw unreadable(name, err);
  }
  if (!entries.some((e) => e.type !== 'Directory')) throw empty(name);
  const links = new Map<string, string>();
  const seen = new Set<string>();
  for (const e of entries) {
    if (!ALLOWED.has(e.type)) throw unsafe(e.path, `type ${e.type} is not allowed (only files, folders and links)`);
    const parts = segments(e.path, 'path', e.path);
    const key = parts.join('/');
    if (e.type === 'SymbolicLink') {
      if (e.link === undefined) throw unsafe(e.path, 'symlink without a target');
      if (isAbsolute(e.link)) throw unsafe(e.path, `symlink target ${e.link} is absolute`);
      if (seen.has(key)) throw unsafe(e.path, 'symlink replaces an earlier entry');
      links.set(key, e.link);
    } else if (e.type === 'Link') {
      if (e.link === undefined) throw unsafe(e.path, 'hard link without a target');
      segments(e.link, 'hard link target', e.path);
    }
    if (links.has(key) && e.type !== 'SymbolicLink') throw unsafe(e.path, 'entry replaces an earlier symlink');
    seen.add(key);
  }
  for (const e of entries) {
    const parts = segments(e.path, 'path', e.path);
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join('/'))) throw unsafe(e.path, `written through the symlink ${parts.slice(0, i).join('/')}`);
    }
    if (e.type === 'SymbolicLink' && resolveInTree([...parts.slice(0, -1), ...e.link!.split('/')], links) === undefined) {
      throw unsafe(e.path, `symlink target ${e.link} points outside the release`);
    }
    if (e.type === 'Link' && resolveInTree(segments(e.link!, 'hard link target', e.path), links) === undefined) {
      throw unsafe(e.path, `hard link target ${e.link} points outside the release`);
    }
  }
}

/**
 * Checks then extracts `file` into `dest` (created when missing). `name` is how errors
 * call the archive (the fetcher's URL for its download).
 *
 * @example
 * await safeExtract('/tmp/app.tgz', '/srv/app/releases/.staging-1234');
 */
export async function safeExtract(file: string, dest: string, name: string = file): Promise<void> {
  await checkArchive(file, name);
  await mkdir(dest, { recursive: true, mode: 0o755 });
  try {
    await tar.x({
      file,
      cwd: dest,
      strict: true,
      preservePaths: false,
      preserveOwner: false,
      filter: (_path, entry) => 'type' in entry && ALLOWED.has(entry.type),
    });
  } catch (err) {
    // Listed whole a moment ago: a read error now means the file changed under us.
    if ((err as NodeJS.ErrnoException).code === undefined || /^TAR_|^Z_/.test(String((err as NodeJS.ErrnoException).code))) throw unreadable(name, err);
    throw err;
  }
  await verifyTree(dest);
}

/**
 * Walks an extracted tree: only files, folders and links that stay inside.
 *
 * @example
 * await verifyTree('/srv/app/releases/v2');
 */
export async function verifyTree(root: string): Promise<void> {
  const realRoot = await realpath(root);
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const abs = join(dir, name);
      const st = await lstat(abs);
      const rel = relative(root, abs);
      if (st.isDirectory()) await walk(abs);
      else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(abs);
        } catch {
          // Dangling: judge the link text against the real path of its folder.
          target = resolve(await realpath(dirname(abs)), await readlink(abs));
        }
        if (target !== realRoot && !target.startsWith(realRoot + sep)) throw unsafe(rel, 'symlink points outside the release');
      } else if (!st.isFile()) throw unsafe(rel, 'not a file, folder or link');
    }
  };
  await walk(root);
}
