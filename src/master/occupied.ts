/**
 * Before a master binds anything: is this app's master already running, and, when an
 * address is taken, is it another hitless master that holds it? Both turn a bare
 * `EADDRINUSE` into a line that says who holds what and what to do (issue 19).
 */
import { HitlessError, isHitlessError } from '../errors.js';
import { controlRequest } from '../control/client.js';
import { discoverMasters, type FoundMaster } from '../control/discover.js';
import type { ListenerSpec } from '../config/types.js';
import type { StatusSnapshot } from '../core/types.js';

/** How long the running master of this app has to answer before we go on as if none ran. */
const PROBE_TIMEOUT_MS = 2000;

/**
 * Throws ERR_MASTER_RUNNING when a master already answers on `runDir` (a second `hitless
 * start` in the same folder), naming its pid.
 *
 * @example
 * await refuseSecondMaster(config.runDir, config.appDir);
 */
export async function refuseSecondMaster(runDir: string, appDir: string): Promise<void> {
  let status: StatusSnapshot;
  try {
    status = (await controlRequest(runDir, 'status', {}, { timeoutMs: PROBE_TIMEOUT_MS })) as StatusSnapshot;
  } catch {
    return; // nobody answers: the control server removes a stale socket itself
  }
  throw new HitlessError('ERR_MASTER_RUNNING',
    `a hitless master (pid ${status.pid}) already runs here (${status.app?.dir ?? appDir}, generation ${status.generation}); ` +
    'apply changes with `hitless reload`, or stop it first with `hitless stop`', { details: { pid: status.pid } });
}

/** "host:port" / "[v6]:port" / "unix:/path" as status reports listeners → what to compare. */
function parseHeld(address: string): { host: string; port: number } | { path: string } | undefined {
  if (address.startsWith('unix:')) return { path: address.slice('unix:'.length) };
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
  return m ? { host: m[1] ?? '', port: Number(m[2]) } : undefined;
}

const WILDCARD = new Set(['', '0.0.0.0', '::']);

/** Does the held `address` take the address `spec` asks for? */
export function holds(address: string, spec: ListenerSpec): boolean {
  const held = parseHeld(address);
  if (held === undefined) return false;
  if (spec.kind === 'unix') return 'path' in held && held.path === spec.path;
  if ('path' in held || held.port !== spec.port) return false;
  return held.host === spec.host || WILDCARD.has(held.host) || WILDCARD.has(spec.host);
}

/**
 * For an ERR_BIND on an address in use: the same error with the hitless master that holds
 * the address named, when one does; otherwise `err` unchanged.
 *
 * @example
 * try { openListeners(specs) } catch (err) { throw await nameTheHolder(err, specs) }
 */
export async function nameTheHolder(err: unknown, specs: ListenerSpec[], discover: () => Promise<FoundMaster[]> = discoverMasters): Promise<unknown> {
  if (!isHitlessError(err, 'ERR_BIND')) return err;
  const spec = specs.find((s) => s.source === err.details.address);
  if (spec === undefined || (spec.kind === 'tcp' && err.details.errno !== 'EADDRINUSE')) return err;
  const holder = (await discover()).find((m) => m.status?.listeners.some((l) => holds(l.address, spec)));
  if (holder?.status === undefined) return err;
  const where = holder.status.app?.dir ?? holder.runDir;
  return new HitlessError('ERR_BIND',
    `cannot listen on ${spec.source}: the hitless master pid ${holder.status.pid} of ${where} holds it ` +
    `(\`hitless list\` shows every master); stop it (\`hitless stop --run-dir ${holder.runDir}\`) or choose another address`,
    { cause: err, details: { ...err.details, holder: holder.status.pid } });
}
