/**
 * The environment that lets unmodified Node apps run under the master: the preload
 * (src/preload/) through NODE_OPTIONS, the address of every held socket so the preload
 * can match an app's `listen(3000)` to the inherited socket, and PORT for apps that read it.
 */
import { ADDRS_VAR, parseAddress } from '../preload/held.js';

/** The preload module, as a file: URL (spaces, `#` and `%` in the path are escaped in it). */
export const PRELOAD_URL = new URL('../preload/index.js', import.meta.url).href;

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
 * NODE_OPTIONS with the preload and HITLESS_LISTEN_ADDRS (a JSON array of the held
 * addresses in fd order) when `enabled`, and PORT (the first TCP listener's port) unless
 * `env` sets PORT already.
 *
 * @example
 * spawn(cmd, args, { env: { ...env, ...preloadEnv(env, listeners.status(), config.preload) } });
 */
export function preloadEnv(env: Record<string, string | undefined>, listeners: readonly { address: string }[], enabled: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const port = listeners.map((l) => parseAddress(l.address).port).find((p) => p !== undefined);
  if (env.PORT === undefined && port !== undefined) out.PORT = String(port);
  if (!enabled) return out;
  out.NODE_OPTIONS = nodeOptionsWithImport(env.NODE_OPTIONS, PRELOAD_URL);
  out[ADDRS_VAR] = JSON.stringify(listeners.map((l) => l.address));
  return out;
}
