/**
 * The Next.js app the latency scenario runs (`next start`): the one the framework tests build
 * (test/frameworks/install.ts) in their cache folder outside the repo, found by its marker.
 * The bench never installs it itself: run the framework tests once (or pass --next <dir>).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The newest prepared `next-*` folder of the framework tests' cache, or undefined. */
export function findNextApp(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const root = env.HITLESS_FRAMEWORKS_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hitless-test-frameworks');
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith('next-'));
  } catch {
    return undefined;
  }
  const ready = names.map((n) => join(root, n)).filter((d) => existsSync(join(d, '.hitless-prepared.json')) && existsSync(join(d, '.next')));
  return ready.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}
