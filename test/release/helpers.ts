// Shared helpers for the release tests: temp app folders, build trees, crafted archives.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header, type HeaderData } from 'tar';
import type { ReloadOutcome } from '../../src/core/types.js';

export interface TestContext { after(fn: () => unknown): void }

/** A fresh temp folder removed after the test. */
export async function tempDir(t: TestContext, prefix = 'hitless-release-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files (path -> content) under `root`. */
export async function writeTree(root: string, files: Record<string, string>): Promise<string> {
  await mkdir(root, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), content);
  }
  return root;
}

/** The pid of a process that has exited: what a killed deploy leaves in its lock and state. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid ?? 0;
}

export interface CraftEntry extends HeaderData { body?: string }

/** Builds a gzipped tar from raw headers, so tests can craft entries no honest tar would write. */
export function craftTgz(entries: CraftEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { body, ...h } of entries) {
    const data = Buffer.from(body ?? '');
    const header = new Header({ mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, ...h, size: data.length });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

export function outcome(ok: boolean, extra: Partial<ReloadOutcome> = {}): ReloadOutcome {
  return {
    ok, generation: ok ? 2 : 1, attempted: 2, reason: 'test', startedAt: Date.now(), durationMs: 1, forced: 0,
    ...(ok ? {} : { error: { code: 'ERR_WORKER_EXITED', message: 'worker 2.1 exited with code 1 before it was ready', output: ['Error: boom'] } }),
    ...extra,
  };
}
