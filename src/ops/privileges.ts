/**
 * Privilege drop for workers (config `user` / `group`): the master keeps its own identity
 * (it may need root to bind port 80) and spawns workers with the resolved uid/gid.
 *
 * Names are looked up in /etc/passwd and /etc/group, then through `getent` (NSS: LDAP,
 * sssd, systemd-userdb) — no native addon. Numeric ids are accepted as they are.
 */
import { execFileSync } from 'node:child_process';
import { HitlessError } from '../errors.js';
import { readOr } from '../core/procfs.js';

/** The identity workers run as. */
export interface Privileges {
  uid: number;
  gid: number;
  /**
   * Supplementary groups of the user (from /etc/group), including `gid`. Note that
   * `child_process.spawn({ uid, gid })` clears supplementary groups (libuv calls
   * setgroups(0)); apply these with `setpriv --groups` in the exec shim if needed.
   */
  groups: number[];
  /** Home folder, for HOME in the worker's environment. */
  home: string;
  /** User name, for USER and LOGNAME. */
  name: string;
}

/** Where account databases are read from (tests point these at fixtures). */
export interface AccountSources {
  passwd?: () => string;
  group?: () => string;
  /** `getent <db> <key>` output, or undefined when not found / not available. */
  getent?: (db: 'passwd' | 'group', key: string) => string | undefined;
  /** The master's effective uid and gid (default: process.geteuid/getegid). */
  euid?: number;
  egid?: number;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const NUMERIC = /^\d+$/;

function defaultGetent(db: 'passwd' | 'group', key: string): string | undefined {
  try {
    return execFileSync('getent', [db, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  } catch {
    return undefined; // exit 2: not found; ENOENT: no getent
  }
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#') || !NUMERIC.test(f[2]!) || !NUMERIC.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#') || !NUMERIC.test(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) });
  }
  return out;
}

function lookup<T>(
  entries: T[],
  match: (e: T) => boolean,
  getent: () => string | undefined,
  parse: (text: string) => T[],
): T | undefined {
  return entries.find(match) ?? parse(getent() ?? '').find(match);
}

/**
 * True when `user` (a name, or a numeric uid) is an account of this machine: /etc/passwd,
 * then `getent passwd` (NSS). A numeric uid always counts: it needs no entry.
 *
 * @example
 * userExists('www-data'); // true on Debian
 */
export function userExists(user: string, sources: Pick<AccountSources, 'passwd' | 'getent'> = {}): boolean {
  if (NUMERIC.test(user)) return true;
  const passwd = parsePasswd((sources.passwd ?? (() => readOr('/etc/passwd')))());
  return lookup(passwd, (e) => e.name === user, () => (sources.getent ?? defaultGetent)('passwd', user), parsePasswd) !== undefined;
}

/**
 * The name of the account `uid` (/etc/passwd, then `getent passwd`), or the number itself
 * when it has none: for messages that tell whom to run a command as.
 *
 * @example
 * userName(0); // 'root'
 */
export function userName(uid: number, sources: Pick<AccountSources, 'passwd' | 'getent'> = {}): string {
  const passwd = parsePasswd((sources.passwd ?? (() => readOr('/etc/passwd')))());
  const entry = lookup(passwd, (e) => e.uid === uid, () => (sources.getent ?? defaultGetent)('passwd', String(uid)), parsePasswd);
  return entry?.name ?? String(uid);
}

/**
 * Resolves the configured `user` / `group` into ids for `child_process.spawn`.
 * Returns undefined when neither is set (workers keep the master's identity).
 *
 * Throws HitlessError `ERR_PRIVILEGE` when a name is unknown, or when the master is not
 * root and the requested identity differs from its own: workers must never silently run
 * as root (or as the master's user) when a `user` was asked for.
 *
 * @example
 * ```ts
 * const p = resolvePrivileges('nobody');
 * // → { uid: 65534, gid: 65534, groups: [65534], home: '/nonexistent', name: 'nobody' }
 * spawn(cmd, args, p ? { uid: p.uid, gid: p.gid, env: { ...env, HOME: p.home, USER: p.name, LOGNAME: p.name } } : {});
 * ```
 */
export function resolvePrivileges(user?: string, group?: string, sources: AccountSources = {}): Privileges | undefined {
  if ((user === undefined || user === '') && (group === undefined || group === '')) return undefined;
  const passwd = parsePasswd((sources.passwd ?? (() => readOr('/etc/passwd')))());
  const groups = parseGroup((sources.group ?? (() => readOr('/etc/group')))());
  const getent = sources.getent ?? defaultGetent;
  const euid = sources.euid ?? process.geteuid?.() ?? 0;
  const egid = sources.egid ?? process.getegid?.() ?? 0;

  let account: PasswdEntry;
  if (user !== undefined && user !== '') {
    const numeric = NUMERIC.test(user);
    const found = lookup(passwd, (e) => (numeric ? e.uid === Number(user) : e.name === user),
      () => getent('passwd', user), parsePasswd);
    if (found) account = found;
    else if (numeric) account = { name: user, uid: Number(user), gid: Number(user), home: '/' };
    else {
      throw new HitlessError('ERR_PRIVILEGE',
        `config "user": no such user ${JSON.stringify(user)} (not in /etc/passwd nor getent passwd); create it or use a numeric uid`);
    }
  } else {
    // Only a group: workers keep the master's user, change group.
    const self = passwd.find((e) => e.uid === euid);
    account = self ?? { name: String(euid), uid: euid, gid: egid, home: process.env.HOME ?? '/' };
  }

  let gid = account.gid;
  if (group !== undefined && group !== '') {
    const numeric = NUMERIC.test(group);
    const found = lookup(groups, (e) => (numeric ? e.gid === Number(group) : e.name === group),
      () => getent('group', group), parseGroup);
    if (found) gid = found.gid;
    else if (numeric) gid = Number(group);
    else {
      throw new HitlessError('ERR_PRIVILEGE',
        `config "group": no such group ${JSON.stringify(group)} (not in /etc/group nor getent group); create it or use a numeric gid`);
    }
  }

  const supplementary = groups.filter((g) => g.members.includes(account.name)).map((g) => g.gid);
  const all = [...new Set([gid, ...supplementary])];

  if (euid !== 0 && (account.uid !== euid || gid !== egid)) {
    throw new HitlessError('ERR_PRIVILEGE',
      `config "user"/"group": the master runs as uid ${euid} gid ${egid}, not root, so it cannot run workers as ` +
      `${account.name} (uid ${account.uid} gid ${gid}); start the master as root, or remove "user"/"group"`);
  }
  return { uid: account.uid, gid, groups: all, home: account.home, name: account.name };
}
