/**
 * Option normalisation for the in-app library: defaults first, then validation that names
 * the option, shows the bad value and says the fix (code ERR_INVALID_OPTION). Every public
 * function validates once, on entry, through these helpers.
 */
import * as net from 'node:net';
import { HitlessError } from '../errors.js';
import {
  DEFAULT_HOOK_TIMEOUT,
  DEFAULT_IDLE_GRACE,
  DEFAULT_SHUTDOWN_DELAY,
  DEFAULT_SHUTDOWN_TIMEOUT,
  DEFAULT_SPREAD,
  DRAIN_SPREAD_ENV,
  DRAIN_TIMEOUT_ENV,
  drainDeadline,
} from './defaults.js';
import type { ShutdownOptions } from './types.js';

/** Shutdown options with every default applied. */
export interface ResolvedShutdownOptions {
  timeout: number;
  idleGrace: number;
  onUpgrade: ((socket: import('node:stream').Duplex) => void) | undefined;
  spread: number;
  /**
   * The master's `drainTimeout` (ms) when `timeout` was not given and follows it: a drain
   * that begins after `shutdownDelay` takes its deadline from what is left of it
   * ({@link drainTimeoutAfter}).
   */
  masterDrainTimeout?: number;
}

/** The most of a bad value a message shows: an app object given by mistake must not fill the screen. */
const SHOWN_MAX = 100;

/**
 * The bad value as a message shows it (JSON; a class instance with its class name; cut at
 * {@link SHOWN_MAX}), and whether `details` may carry the value itself: not an object too
 * large to show, nor an instance of a class (an app object), whose inspection is pages long.
 */
function show(value: unknown): { text: string; whole: boolean } {
  if (typeof value === 'string') return { text: cut(JSON.stringify(value)), whole: true };
  if (typeof value === 'function') return { text: 'a function', whole: true };
  // JSON writes NaN and ±Infinity as null; NaN (Number() of an unset variable) is the clue.
  if (typeof value === 'number') return { text: String(value), whole: true };
  let json: string;
  try {
    json = JSON.stringify(value) ?? String(value);
  } catch {
    json = String(value);
  }
  const text = cut(json);
  const proto: unknown = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.getPrototypeOf(value) : null;
  if (proto === null || proto === Object.prototype) return { text, whole: text === json };
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return { text: typeof name === 'string' && name !== '' ? `${name} ${text}` : text, whole: false };
}

function cut(text: string): string {
  return text.length <= SHOWN_MAX ? text : `${text.slice(0, SHOWN_MAX)}…`;
}

/** Throws ERR_INVALID_OPTION naming `where.name`, the value and the fix. */
export function invalid(where: string, name: string, value: unknown, expected: string, example: string): never {
  return fail(`${where}: option "${name}" must be ${expected}; got ${show(value).text}. Fix: ${example}.`, name, value);
}

/**
 * `details.value` is the value itself, or what a message shows of it when that is cut: Node
 * prints `details` with an uncaught error, and a whole app object there is pages of output.
 */
function fail(message: string, name: string, value: unknown): never {
  const shown = show(value);
  throw new HitlessError('ERR_INVALID_OPTION', `hitless ${message}`, { details: { option: name, value: shown.whole ? value : shown.text } });
}

/**
 * Throws ERR_INVALID_OPTION unless `value`, the `server` argument of `where`, is a
 * net.Server (which http, https and http2 servers are); `example` is the fix.
 */
export function checkServer(where: string, value: unknown, example: string): asserts value is net.Server {
  if (!(value instanceof net.Server)) invalid(where, 'server', value, 'a net.Server (http, https or http2 server)', example);
}

/** A non-negative finite number of milliseconds, or the default when undefined. */
export function milliseconds(where: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    invalid(where, name, value, 'a non-negative number of milliseconds', `{ ${name}: ${fallback} }`);
  }
  return value;
}

/** A plain object (or undefined, read as {}). */
export function object(where: string, name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    invalid(where, name, value, 'an object', `pass { ... } or leave it out`);
  }
  return value as Record<string, unknown>;
}

/** Rejects keys the function does not know, so a typo never passes silently. */
export function knownKeys(where: string, options: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      fail(`${where}: unknown option "${key}". Known options: ${known.join(', ')}.`, key, options[key]);
    }
  }
}

export const SHUTDOWN_KEYS = ['timeout', 'idleGrace', 'onUpgrade', 'spread'] as const;

/** The default spread: the master's `drain.spread` (env {@link DRAIN_SPREAD_ENV}) under the master, else {@link DEFAULT_SPREAD}. */
function defaultSpread(): number {
  const raw = process.env[DRAIN_SPREAD_ENV];
  const ms = raw === undefined || raw === '' ? NaN : Number(raw);
  return Number.isFinite(ms) && ms >= 0 ? ms : DEFAULT_SPREAD;
}

/**
 * The master's `drainTimeout` (ms, env {@link DRAIN_TIMEOUT_ENV}), which the default deadline
 * follows ({@link drainDeadline}); undefined standalone, or for a value that is not a
 * positive number (the default is then {@link DEFAULT_SHUTDOWN_TIMEOUT}).
 */
function masterDrainTimeout(): number | undefined {
  const raw = process.env[DRAIN_TIMEOUT_ENV];
  const ms = raw === undefined || raw === '' ? NaN : Number(raw);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/**
 * The deadline of a drain that begins `waited` ms after the stop signal (its
 * `shutdownDelay`): unchanged when `timeout` was given; else {@link drainDeadline} of what
 * is left of the master's `drainTimeout`, which counts from the signal.
 *
 * @example
 * drainTimeoutAfter({ timeout: 30_000, masterDrainTimeout: 35_000, … }, 10_000); // 20 000
 */
export function drainTimeoutAfter(options: ResolvedShutdownOptions, waited: number): number {
  if (options.masterDrainTimeout === undefined || waited <= 0) return options.timeout;
  return Math.round(drainDeadline(Math.max(options.masterDrainTimeout - waited, 0)));
}

/** Applies defaults to shutdown options and validates them. */
export function resolveShutdownOptions(where: string, input: ShutdownOptions | undefined, strict = true): ResolvedShutdownOptions {
  const options = object(where, 'options', input);
  if (strict) knownKeys(where, options, SHUTDOWN_KEYS);
  const onUpgrade = options.onUpgrade;
  if (onUpgrade !== undefined && typeof onUpgrade !== 'function') {
    invalid(where, 'onUpgrade', onUpgrade, 'a function (socket) => void', '{ onUpgrade: (socket) => ws.close(1001) }');
  }
  const fromMaster = options.timeout === undefined ? masterDrainTimeout() : undefined;
  return {
    ...(fromMaster === undefined ? {} : { masterDrainTimeout: fromMaster }),
    timeout: milliseconds(where, 'timeout', options.timeout, fromMaster === undefined ? DEFAULT_SHUTDOWN_TIMEOUT : Math.round(drainDeadline(fromMaster))),
    idleGrace: milliseconds(where, 'idleGrace', options.idleGrace, DEFAULT_IDLE_GRACE),
    onUpgrade: onUpgrade as ResolvedShutdownOptions['onUpgrade'],
    spread: milliseconds(where, 'spread', options.spread, defaultSpread()),
  };
}

/** Validates the shutdownDelay option. */
export function resolveShutdownDelay(where: string, value: unknown): number {
  return milliseconds(where, 'shutdownDelay', value, DEFAULT_SHUTDOWN_DELAY);
}

/** Validates an onShutdown hook's timeout. */
export function resolveHookTimeout(value: unknown): number {
  return milliseconds('onShutdown()', 'timeout', value, DEFAULT_HOOK_TIMEOUT);
}

export const LISTEN_KEYS = ['name', 'port', 'host', 'path', 'backlog', 'signals', 'shutdown', 'shutdownDelay'] as const;

/** Listen options with defaults applied (the fallback address stays optional). */
export interface ResolvedListenOptions {
  name: string | undefined;
  port: number | undefined;
  host: string | undefined;
  path: string | undefined;
  backlog: number | undefined;
  signals: boolean;
  shutdown: ResolvedShutdownOptions;
  shutdownDelay: number;
}

function optionalString(where: string, name: string, value: unknown, example: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') invalid(where, name, value, 'a non-empty string', example);
  return value;
}

function optionalInteger(where: string, name: string, value: unknown, max: number, example: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    invalid(where, name, value, `an integer from 0 to ${max}`, example);
  }
  return value;
}

/** Validates listen()'s second argument (a name or an options object). */
export function resolveListenOptions(where: string, input: unknown): ResolvedListenOptions {
  const options = typeof input === 'string' ? { name: input } : object(where, 'options', input);
  knownKeys(where, options, LISTEN_KEYS);
  const signals = options.signals ?? true;
  if (typeof signals !== 'boolean') invalid(where, 'signals', signals, 'true or false', '{ signals: false }');
  const resolved: ResolvedListenOptions = {
    name: optionalString(where, 'name', options.name, "{ name: 'http' } (one of LISTEN_FDNAMES)"),
    port: optionalInteger(where, 'port', options.port, 65535, '{ port: 8080 }'),
    host: optionalString(where, 'host', options.host, "{ host: '127.0.0.1' }"),
    path: optionalString(where, 'path', options.path, "{ path: '/run/app.sock' }"),
    backlog: optionalInteger(where, 'backlog', options.backlog, 2 ** 31 - 1, '{ backlog: 511 }'),
    signals,
    shutdown: resolveShutdownOptions(where, options.shutdown as ShutdownOptions | undefined),
    shutdownDelay: resolveShutdownDelay(where, options.shutdownDelay),
  };
  if (resolved.path !== undefined && (resolved.port !== undefined || resolved.host !== undefined)) {
    invalid(where, 'path', resolved.path, 'used without port/host', 'give either { path } or { port, host }');
  }
  return resolved;
}
