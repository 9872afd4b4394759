/**
 * The environment that lets unmodified Node apps run under the master: the preload
 * (src/preload/) through NODE_OPTIONS, the address of every held socket so the preload
 * can match an app's `listen(3000)` to the inherited socket, and PORT for apps that read it.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ADDRS_VAR, parseAddress } from '../preload/held.js';
import { stablePath } from './install-layout.js';

/** The preload module of this copy of hitless, as a file: URL (spaces, `#` and `%` in the path are escaped in it). */
export const PRELOAD_URL = new URL('../preload/index.js', import.meta.url).href;

/**
 * The preload workers of the app in `appDir` load (`own`: this copy's): under pnpm, the
 * same file under the app's `node_modules/hitless` symlink rather than in the store folder
 * of the version this master runs, which `pnpm prune` removes once another version is
 * installed (every worker started after it would fail with ERR_MODULE_NOT_FOUND: h29 N1);
 * any other path as it is (install-layout.ts).
 *
 * So a worker loads the preload of the hitless installed when it starts, which after a
 * `pnpm add` may be newer than the master until `hitless upgrade`: as with npm, which
 * replaces `node_modules/hitless` in place, and as the app's own `require('hitless')` does.
 *
 * @example
 * preloadUrl('/srv/app', 'file:///srv/app/node_modules/.pnpm/hitless@0.1.0/node_modules/hitless/build/src/preload/index.js');
 * // 'file:///srv/app/node_modules/hitless/build/src/preload/index.js'
 */
export function preloadUrl(appDir: string, own: string = PRELOAD_URL): string {
  const file = fileURLToPath(own);
  const stable = stablePath(file, appDir);
  return stable === file ? own : pathToFileURL(stable).href;
}

/**
 * `existing` NODE_OPTIONS with `--import=<url>` appended (unchanged when already there).
 * The value is double-quoted, with `"` and `\` escaped, as Node's NODE_OPTIONS parser reads it.
 *
 * @example
 * nodeOptionsWithImport('--max-old-space-size=512', 'file:///opt/hitless/build/src/preload/index.js');
 * // '--max-old-space-size=512 --import="file:///opt/hitless/build/src/preload/index.js"'
 */
export function nodeOptionsWithImport(existing: string | undefined, url: string): string {
  const flag = `--import="${url.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  if (existing === undefined || existing.trim() === '') return flag;
  if (existing.includes(flag)) return existing;
  return `${existing} ${flag}`;
}

/**
 * Variables to add to a worker's environment `env` (the one it would get otherwise):
 * NODE_OPTIONS with the preload at `url` (default: this copy's) and HITLESS_LISTEN_ADDRS (a JSON array of the held
 * addresses in fd order) when `enabled`, and PORT (the first TCP listener's port) unless
 * `env` sets PORT already.
 *
 * @example
 * spawn(cmd, args, { env: { ...env, ...preloadEnv(env, listeners.status(), config.preload, preloadUrl(cwd)) } });
 */
export function preloadEnv(env: Record<string, string | undefined>, listeners: readonly { address: string }[], enabled: boolean, url: string = PRELOAD_URL): Record<string, string> {
  const out: Record<string, string> = {};
  const port = listeners.map((l) => parseAddress(l.address).port).find((p) => p !== undefined);
  if (env.PORT === undefined && port !== undefined) out.PORT = String(port);
  if (!enabled) return out;
  out.NODE_OPTIONS = nodeOptionsWithImport(env.NODE_OPTIONS, url);
  out[ADDRS_VAR] = JSON.stringify(listeners.map((l) => l.address));
  return out;
}
