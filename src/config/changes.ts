/**
 * What a reload changes: the difference between two effective configurations (the one the
 * serving generation runs and the one just read), as a flat list of keys with the old and
 * new value shown the way people read them. Pure functions, no zod: `hitless reload`
 * prints the result and the master computes it.
 *
 * Secrets: values of `env` and `fetch.headers` are never shown, only that a key was added,
 * removed or changed; `fetch.url` loses its query string (presigned URLs carry credentials).
 */
import { formatDuration } from './duration.js';
import type { ConfigChange, ListenerSpec, MasterConfig } from './types.js';

/** Stands in for a secret value in a change. */
export const HIDDEN = '(hidden)';

/** Keys a reload cannot apply, with what to do instead. */
export const RESTART_ONLY: Readonly<Record<string, string>> = {
  configPath: 'the master keeps reading the file it was started from; restart it (hitless stop, hitless start) to use another',
  runDir: 'the control socket stays where the master created it; restart the master to move it',
  pidFile: 'the pid file is written once at start; restart the master to move it',
  logFormat: "the master's own log format is set at start; restart the master to change it",
};

const NOT_APPLIED_INHERITED = 'this socket comes from systemd (LISTEN_FDS); change the socket unit and restart the service';

type Flat = Map<string, { raw: string; shown: string }>;

const ms = (n: number): string => formatDuration(n);
const bytes = (n: number): string => (n % 1024 ** 2 === 0 ? `${n / 1024 ** 2}M` : n % 1024 === 0 ? `${n / 1024}k` : `${n}`);

/** A URL without credentials or query string. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<bad url>';
  }
}

/** `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/app.sock?mode=0660`. */
export function describeListener(spec: ListenerSpec): string {
  if (spec.kind === 'unix') return `unix:${spec.path}${spec.mode === undefined ? '' : `?mode=0${spec.mode.toString(8)}`}`;
  return spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
}

function flatten(c: MasterConfig): Flat {
  const out: Flat = new Map();
  const put = (key: string, value: string | number | boolean | null | undefined, secret = false): void => {
    if (value === undefined || value === null) return;
    out.set(key, { raw: String(value), shown: secret ? HIDDEN : String(value) });
  };
  put('configPath', c.configPath);
  put('command', JSON.stringify(c.command));
  for (const l of c.listen) put(`listen.${l.name}`, describeListener(l));
  put('listen (order)', c.listen.map((l) => l.name).join(', '));
  put('workers', c.workers);
  put('readyTimeout', ms(c.readyTimeout));
  put('drainTimeout', ms(c.drainTimeout));
  put('readyAfter', c.readyAfter === null ? 'null (wait for READY=1)' : ms(c.readyAfter));
  put('stopSignal', c.stopSignal);
  for (const [k, v] of Object.entries(c.env)) put(`env.${k}`, v, true);
  put('cwd', c.cwd);
  put('strategy', c.strategy);
  put('restart.backoffInitial', ms(c.restart.backoffInitial));
  put('restart.backoffMax', ms(c.restart.backoffMax));
  put('restart.maxRestarts', c.restart.maxRestarts);
  put('restart.window', ms(c.restart.window));
  put('user', c.user);
  put('group', c.group);
  put('runDir', c.runDir);
  put('pidFile', c.pidFile);
  put('logFormat', c.logFormat);
  put('release.keep', c.release.keep);
  put('release.prepare', c.release.prepare && JSON.stringify(c.release.prepare));
  if (c.watch) {
    put('watch.paths', JSON.stringify(c.watch.paths));
    put('watch.debounce', ms(c.watch.debounce));
  }
  if (c.fetch) {
    out.set('fetch.url', { raw: c.fetch.url, shown: safeUrl(c.fetch.url) });
    put('fetch.interval', ms(c.fetch.interval));
    put('fetch.sha256', c.fetch.sha256);
    put('fetch.sha256Url', c.fetch.sha256Url && safeUrl(c.fetch.sha256Url));
    for (const [k, v] of Object.entries(c.fetch.headers)) put(`fetch.headers.${k}`, v, true);
    put('fetch.maxBytes', bytes(c.fetch.maxBytes));
    put('fetch.timeout', ms(c.fetch.timeout));
  }
  put('logs.mode', c.logs.mode);
  put('logs.dir', c.logs.dir);
  put('logs.maxSize', bytes(c.logs.maxSize));
  put('logs.keep', c.logs.keep);
  put('logs.tag', c.logs.tag);
  put('logs.timestamps', c.logs.timestamps);
  put('metrics.listen', c.metrics?.listen);
  return out;
}

export interface DiffOptions {
  /** Names of the master's systemd sockets: a `listen` entry with such a name is that socket. */
  inheritedNames?: readonly string[];
}

/**
 * The changes from `from` to `to`, in a stable order (the order of docs/CONFIG.md's keys).
 * A change a reload cannot apply carries `notApplied` with the reason.
 *
 * @example
 * diffConfig(serving, next);
 * // [{ key: 'workers', from: '2', to: '3' }, { key: 'env.API_KEY', from: null, to: '(hidden)' }]
 */
export function diffConfig(from: MasterConfig, to: MasterConfig, options: DiffOptions = {}): ConfigChange[] {
  const a = flatten(from);
  const b = flatten(to);
  const keys = [...b.keys()];
  for (const k of a.keys()) if (!b.has(k)) keys.splice(insertAt(keys, k, [...a.keys()]), 0, k);
  const inherited = new Set(options.inheritedNames ?? []);
  const changes: ConfigChange[] = [];
  for (const key of keys) {
    const x = a.get(key);
    const y = b.get(key);
    if (x?.raw === y?.raw) continue;
    const change: ConfigChange = { key, from: x?.shown ?? null, to: y?.shown ?? null };
    if (RESTART_ONLY[key]) change.notApplied = RESTART_ONLY[key];
    if (key.startsWith('listen.') && inherited.has(key.slice('listen.'.length))) change.notApplied = NOT_APPLIED_INHERITED;
    // Only a pure reordering is news: an added or removed entry already explains a new order.
    if (key === 'listen (order)' && changes.some((c) => c.key.startsWith('listen.'))) continue;
    changes.push(change);
  }
  return changes;
}

/** Where a key only `from` has goes among `to`'s keys: after its predecessor in `from`. */
function insertAt(keys: string[], key: string, order: string[]): number {
  for (let i = order.indexOf(key) - 1; i >= 0; i--) {
    const at = keys.indexOf(order[i]!);
    if (at !== -1) return at + 1;
  }
  return 0;
}

/**
 * One line per change, for `hitless reload`: `workers: 2 → 3`, `env.API_KEY: changed
 * (value hidden)`, `listen.admin: added 127.0.0.1:9000`.
 *
 * @example
 * describeChange({ key: 'workers', from: '2', to: '3' }); // "workers: 2 → 3"
 */
export function describeChange(c: ConfigChange): string {
  const secret = c.from === HIDDEN || c.to === HIDDEN;
  let what: string;
  if (c.from === null) what = secret ? 'added (value hidden)' : `added ${c.to ?? ''}`;
  else if (c.to === null) what = secret ? 'removed' : `removed (was ${c.from})`;
  else what = secret ? 'changed (value hidden)' : `${c.from} → ${c.to}`;
  return `${c.key}: ${what}${c.notApplied ? ` — NOT APPLIED: ${c.notApplied}` : ''}`;
}
