/**
 * The identity workers run as (config `user` / `group`), resolved ahead of time so that
 * spawning stays synchronous: at start and before each reload whose spec names a user or
 * group, `load()` looks the names up (src/ops/privileges.ts, imported only then) and a bad
 * name refuses the start or the reload with ERR_PRIVILEGE; `get()` then answers from the
 * cache when the supervisor spawns.
 */
import { HitlessError } from '../errors.js';
import type { MasterConfig } from '../config/types.js';

export interface WorkerIdentity {
  uid?: number | undefined;
  gid?: number | undefined;
  /** HOME, USER and LOGNAME of the user workers run as (empty: the master's own). */
  env: Record<string, string>;
  /** The user's name (for messages). */
  name?: string;
}

type Resolve = (user?: string, group?: string) => { uid: number; gid: number; home: string; name: string } | undefined;

const keyOf = (c: Pick<MasterConfig, 'user' | 'group'>): string => `${c.user ?? ''}\0${c.group ?? ''}`;

export class Identities {
  readonly #cache = new Map<string, WorkerIdentity>();
  #resolve: Resolve | undefined;

  /**
   * Resolves the user/group of `config` (cached by name).
   *
   * @throws HitlessError ERR_PRIVILEGE naming the user or group and the fix.
   * @example
   * await identities.load(next); // before supervisor.reload(reason, next)
   */
  async load(config: Pick<MasterConfig, 'user' | 'group'>): Promise<WorkerIdentity> {
    const known = this.#cache.get(keyOf(config));
    if (known) return known;
    let identity: WorkerIdentity = { env: {} };
    if (config.user !== undefined || config.group !== undefined) {
      this.#resolve ??= (await import('../ops/privileges.js')).resolvePrivileges;
      const p = this.#resolve(config.user, config.group);
      if (p) identity = { uid: p.uid, gid: p.gid, name: p.name, env: { HOME: p.home, USER: p.name, LOGNAME: p.name } };
    }
    this.#cache.set(keyOf(config), identity);
    return identity;
  }

  /** The identity `load()` resolved for `config`; throws if it was never loaded (a bug). */
  get(config: Pick<MasterConfig, 'user' | 'group'>): WorkerIdentity {
    const known = this.#cache.get(keyOf(config));
    if (!known) throw new HitlessError('ERR_PRIVILEGE', `user ${String(config.user)} / group ${String(config.group)} was not resolved before spawning`);
    return known;
  }
}
