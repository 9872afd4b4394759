/**
 * Where a generation runs. When the app folder has a `current` release link, each
 * generation is pinned to the folder `current` resolves to *at spawn time*: a worker
 * never sees code change under it, and a later switch of `current` affects only the
 * next generation (the Capistrano/Unicorn trap of resolving `current` once, at master
 * start, and running stale code forever, is avoided by resolving per generation).
 */
import { realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { MasterConfig } from '../config/types.js';

export interface Workdir {
  cwd: string;
  /** Release id (folder name under releases/) or undefined when not using releases. */
  release: string | undefined;
}

export function resolveWorkdir(config: Pick<MasterConfig, 'appDir' | 'cwd'>): Workdir {
  try {
    const target = realpathSync(join(config.appDir, 'current'));
    return { cwd: target, release: basename(target) };
  } catch {
    return { cwd: config.cwd, release: undefined };
  }
}
