/**
 * What a reload changes: the difference between two effective configurations (the one the
 * serving generation runs and the one just read), as a flat list of keys with the old and
 * new value shown the way people read them. Pure functions, no zod: `hitless reload`
 * prints the result and the master computes it.
 *
 * Secrets: values of `env` and `fetch.headers` are never shown, only that a key was added,
 * removed or changed; `fetch.url` loses its query string (presigned URLs carry credentials).
 */
import { flattenConfig, HIDDEN, RESTART_ONLY } from './keys.js';
import { listenerKey } from './listen.js';
import type { ConfigChange, MasterConfig } from './types.js';

// The key table (keys.ts) says which keys exist and how each is shown; re-exported for
// the commands that print changes and listeners.
export { describeListener, HIDDEN, RESTART_ONLY } from './keys.js';

const NOT_APPLIED_INHERITED = 'this socket comes from systemd (LISTEN_FDS); change the socket unit and restart the service';

export interface DiffOptions {
  /** Names of the master's systemd sockets: a `listen` entry with such a name is that socket. */
  inheritedNames?: readonly string[];
}

/** Why a file that appeared is not read by a master started with flags only. */
const NOT_APPLIED_FLAGS_ONLY = 'the master was started with flags only and reads no file; restart it in this folder (hitless stop, hitless start) to use the file';

/**
 * The changes from `from` to `to`, in a stable order (the key table's, which is
 * docs/CONFIG.md's). Every key of the configuration is compared (keys.ts).
 * A change a reload cannot apply carries `notApplied` with the reason.
 *
 * @example
 * diffConfig(serving, next);
 * // [{ key: 'workers', from: '2', to: '3' }, { key: 'env.API_KEY', from: null, to: '(hidden)' }]
 */
export function diffConfig(from: MasterConfig, to: MasterConfig, options: DiffOptions = {}): ConfigChange[] {
  const a = flattenConfig(from);
  const b = flattenConfig(to);
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
    // A master started with flags only was started from no file at all.
    if (key === 'configPath' && from.configPath === undefined) change.notApplied = NOT_APPLIED_FLAGS_ONLY;
    if (key.startsWith('listen.') && inherited.has(key.slice('listen.'.length))) change.notApplied = NOT_APPLIED_INHERITED;
    // Only a pure reordering is news: an added or removed entry already explains a new order.
    if (key === 'listen (order)' && changes.some((c) => c.key.startsWith('listen.'))) continue;
    changes.push(change);
  }
  return markRenames(from, to, changes);
}

/**
 * A listener whose address stays under a new name keeps its socket, so it is a rename, not
 * an added address and a removed one: the added entry says which it was
 * (`renamedFrom`), and the old name's "removed" line goes when nothing else took it.
 */
function markRenames(from: MasterConfig, to: MasterConfig, changes: ConfigChange[]): ConfigChange[] {
  const dropped = new Set<string>();
  for (const spec of to.listen) {
    const change = changes.find((c) => c.key === `listen.${spec.name}`);
    if (change?.from !== null || change.notApplied !== undefined) continue;
    const before = from.listen.find((f) => f.name !== spec.name && listenerKey(f) === listenerKey(spec));
    if (!before) continue;
    change.renamedFrom = before.name;
    if (!to.listen.some((t) => t.name === before.name)) dropped.add(`listen.${before.name}`);
  }
  return dropped.size === 0 ? changes : changes.filter((c) => !dropped.has(c.key));
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
 * (value hidden)`, `listen.admin: added 127.0.0.1:9000`, `listen.api: 127.0.0.1:8080,
 * renamed from http (its socket is kept)`.
 *
 * @example
 * describeChange({ key: 'workers', from: '2', to: '3' }); // "workers: 2 → 3"
 */
export function describeChange(c: ConfigChange): string {
  const secret = c.from === HIDDEN || c.to === HIDDEN;
  let what: string;
  if (c.renamedFrom !== undefined) what = `${c.to ?? ''}, renamed from ${c.renamedFrom} (its socket is kept)`;
  else if (c.from === null) what = secret ? 'added (value hidden)' : `added ${c.to ?? ''}`;
  else if (c.to === null) what = secret ? 'removed' : `removed (was ${c.from})`;
  else what = secret ? 'changed (value hidden)' : `${c.from} → ${c.to}`;
  return `${c.key}: ${what}${c.notApplied ? ` — NOT APPLIED: ${c.notApplied}` : ''}`;
}
