/**
 * Before a master binds anything: is this app's master already running, and, when an
 * address is taken, is it another hitless master that holds it? Both turn a bare
 * `EADDRINUSE` into a line that says who holds what and what to do (issue 19).
 */
import { HitlessError, isHitlessError } from '../errors.js';
import { controlRequest } from '../control/client.js';
import { CONTROL_CHECK_MS } from '../control/server.js';
import { beaconPids } from '../control/beacon.js';
import { discoverMasters, type FoundMaster } from '../control/discover.js';
import { mastersOfApp } from '../control/find.js';
import { asTheMaster } from '../control/access.js';
import type { ListenerSpec } from '../config/types.js';
import { parseMetricsListen } from '../config/metrics.js';
import { inUseAdviceHere } from './socket-table.js';
import { describePortHolder, findPortHolder, type PortHolder } from './port-holder.js';
import type { StatusSnapshot } from '../core/types.js';

/** How long the running master of this app has to answer before we go on as if none ran. */
const PROBE_TIMEOUT_MS = 2000;

/**
 * Throws ERR_MASTER_RUNNING when a master of this app folder already runs: one answering on
 * `runDir` (a second `hitless start` in the same folder), or one started with another
 * `--run-dir` (systemd's, another shell's, another user's), found by its beacon
 * (control/beacon.ts) and `hitless list`'s discovery. Two masters of one app folder would
 * both serve its `current`, and the client commands there reach only one of them.
 *
 * @example
 * await refuseSecondMaster(config.runDir, config.appDir);
 */
export async function refuseSecondMaster(runDir: string, appDir: string): Promise<void> {
  let status: StatusSnapshot | undefined;
  try {
    status = (await controlRequest(runDir, 'status', {}, { timeoutMs: PROBE_TIMEOUT_MS })) as StatusSnapshot;
  } catch {
    // nobody answers here (the control server removes a stale socket itself): look elsewhere
  }
  if (status !== undefined) {
    throw new HitlessError('ERR_MASTER_RUNNING',
      `a hitless master (pid ${status.pid}) already runs here (${status.app?.dir ?? appDir}, generation ${status.generation}); ` +
      (status.state === 'stopping'
        ? 'it is stopping (draining its workers): start again once it has exited (`hitless stop` waits for that)'
        : 'apply changes with `hitless reload`, or stop it first with `hitless stop`'), { details: { pid: status.pid } });
  }
  // On Linux no beacon of this folder means no master of it (of this hitless version): no need to ask every master.
  if (beaconPids(appDir)?.length === 0) return;
  const { reachable, denied } = await mastersOfApp(appDir);
  const other = reachable[0];
  if (other?.status !== undefined) {
    throw new HitlessError('ERR_MASTER_RUNNING',
      `a hitless master (pid ${other.status.pid}) already runs for ${other.status.app?.dir ?? appDir} with the run dir ${other.runDir} ` +
      `(generation ${other.status.generation}); apply changes with \`hitless reload\`, or stop it first with \`hitless stop\` (both find it from the app folder); ` +
      'one app folder has one master: for a second one, give it an app folder of its own', { details: { pid: other.status.pid, runDir: other.runDir } });
  }
  if (denied !== undefined) {
    const { pid, owner } = denied.details as { pid: number; owner?: string };
    throw new HitlessError('ERR_MASTER_RUNNING',
      `another user's hitless master (pid ${pid}${owner === undefined ? '' : `, user ${owner}`}) already runs for ${appDir}; ` +
      `one app folder has one master: reload or stop that one instead, ${asTheMaster(owner)}`, { details: { pid } });
  }
  // A beacon is a live process (it goes with it), but nothing of it answered: a master whose
  // control socket was removed with its run dir, which it makes again within
  // CONTROL_CHECK_MS. Starting beside it would give the folder two masters.
  const [silent] = beaconPids(appDir) ?? [];
  if (silent !== undefined) {
    throw new HitlessError('ERR_MASTER_RUNNING',
      `a hitless master (pid ${silent}) already runs for ${appDir} but did not answer on its control socket (stopped or too busy to answer, or its run dir was removed, which it makes again within ${CONTROL_CHECK_MS / 1000} s); ` +
      `try again in a moment, or stop it with \`kill -TERM ${silent}\``, { details: { pid: silent } });
  }
}

/** "host:port" / "[v6]:port" / "unix:/path" as status reports listeners → what to compare. */
function parseHeld(address: string): { host: string; port: number } | { path: string } | undefined {
  if (address.startsWith('unix:')) return { path: address.slice('unix:'.length) };
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
  return m ? { host: m[1] ?? '', port: Number(m[2]) } : undefined;
}

const WILDCARD = new Set(['', '0.0.0.0', '::']);

/** Does the held `address` take the address `spec` asks for? */
export function holds(address: string, spec: ListenerSpec | { kind: 'tcp'; host: string; port: number }): boolean {
  const held = parseHeld(address);
  if (held === undefined) return false;
  if (spec.kind === 'unix') return 'path' in held && held.path === spec.path;
  if ('path' in held || held.port !== spec.port) return false;
  return held.host === spec.host || WILDCARD.has(held.host) || WILDCARD.has(spec.host);
}

/**
 * For an ERR_BIND on an address in use: the same error with the hitless master that holds
 * the address named, when one does; else with the process that holds it (port-holder.ts:
 * a worker a killed master left, or any process this user can see); otherwise `err` unchanged.
 *
 * @example
 * try { openListeners(specs) } catch (err) { throw await nameTheHolder(err, specs) }
 */
export async function nameTheHolder(
  err: unknown, specs: ListenerSpec[], discover: () => Promise<FoundMaster[]> = discoverMasters,
  findHolder: (spec: ListenerSpec) => PortHolder | undefined = findPortHolder,
): Promise<unknown> {
  if (!isHitlessError(err, 'ERR_BIND')) return err;
  const spec = specs.find((s) => s.source === err.details.address);
  if (spec === undefined || (spec.kind === 'tcp' && err.details.errno !== 'EADDRINUSE')) return err;
  const holder = (await discover()).find((m) => m.status?.listeners.some((l) => holds(l.address, spec)));
  if (holder?.status === undefined) {
    // No master claims it: name the process that holds it, above all a worker its dead master left (h21 F8).
    const found = err.details.errno === 'EADDRINUSE' ? findHolder(spec) : undefined;
    if (found === undefined) return err;
    return new HitlessError('ERR_BIND', `cannot listen on ${spec.source}: EADDRINUSE ${describePortHolder(found)}`,
      { cause: err, details: { ...err.details, holder: found.pids[0], holders: found.pids } });
  }
  const where = holder.status.app?.dir ?? holder.runDir;
  return new HitlessError('ERR_BIND',
    `cannot listen on ${spec.source}: the hitless master pid ${holder.status.pid} of ${where} holds it ` +
    `(\`hitless list\` shows every master); stop it (\`hitless stop --run-dir ${holder.runDir}\`) or choose another address`,
    { cause: err, details: { ...err.details, holder: holder.status.pid } });
}

/**
 * For an ERR_BIND of `metrics.listen` on an address in use (the endpoint's start, or a
 * reload's probe): the same error naming the hitless master that holds the port (its
 * metrics endpoint or one of its listen addresses), as {@link nameTheHolder} does for
 * `listen`; else what else holds it ("another process listens there", or connections using
 * it as their local port). This master's own listen address is said where it is thrown.
 *
 * @example
 * await parts.startMetrics(config).catch(async (err) => { throw await nameMetricsHolder(err) });
 */
export async function nameMetricsHolder(err: unknown, discover: () => Promise<FoundMaster[]> = discoverMasters): Promise<unknown> {
  if (!isHitlessError(err, 'ERR_BIND') || err.details.errno !== 'EADDRINUSE' || err.details.own === true) return err;
  const { metrics: listen, stay } = err.details as { metrics?: unknown; stay?: unknown };
  if (typeof listen !== 'string') return err;
  const { host, port } = parseMetricsListen(listen);
  const target = { kind: 'tcp' as const, host, port };
  const holder = (await discover()).find((m) => m.status !== undefined && m.status.pid !== process.pid &&
    [m.status.metrics, ...m.status.listeners.map((l) => l.address)].some((a) => a !== undefined && holds(a, target)));
  const why = holder?.status === undefined
    ? `EADDRINUSE (${inUseAdviceHere(port)})`
    : `the hitless master pid ${holder.status.pid} of ${holder.status.app?.dir ?? holder.runDir} holds it (\`hitless list\` shows every master); ` +
      `stop it (\`hitless stop --run-dir ${holder.runDir}\`) or choose another address`;
  return new HitlessError('ERR_BIND', `config "metrics.listen": cannot listen on ${listen}: ${why}${typeof stay === 'string' ? ` (metrics stay on ${stay})` : ''}`,
    { cause: err, details: { ...err.details, ...(holder?.status ? { holder: holder.status.pid } : {}) } });
}
