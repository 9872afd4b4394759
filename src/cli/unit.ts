/**
 * The systemd unit `hitless startup` writes: the master as the service's main process,
 * with the real paths of node and of the hitless CLI (systemd's PATH has neither npx nor
 * a version manager's node), a run dir systemd creates, `systemctl reload` waiting for
 * the reload's outcome, SIGTERM to the master alone, and a stop timeout above the drain
 * budget. docs/systemd.md explains every line.
 */
import { dirname } from 'node:path';
import { HitlessError } from '../errors.js';
import type { MasterConfig } from '../config/types.js';
import { bootConcurrency } from '../core/spec.js';

/** Unit names systemd accepts (systemd.unit(5): letters, digits, ":-_.\" ); we keep to a safe subset. */
const UNIT_NAME = /^[A-Za-z0-9][A-Za-z0-9:_.@-]*$/;
/** What systemd adds to the master's stop time beyond drainTimeout: the app's own shutdownDelay, exit. */
export const STOP_MARGIN_MS = 15_000;
/** systemd's DefaultTimeoutStartSec: a unit never gets a shorter start (and reload) bound than it had without the line. */
export const SYSTEMD_START_TIMEOUT_MS = 90_000;
/** What TimeoutStartSec= adds beyond a reload's own bounds: the `hitless reload` client, the config read, the switch. */
export const RELOAD_MARGIN_MS = 30_000;
/** First line of every unit `hitless startup` writes: lets `--install` tell its own units from others. */
export const UNIT_MARKER = '# Written by `hitless startup`';

export interface UnitOptions {
  /** Unit name without `.service`. */
  name: string;
  /** Where the master runs (the folder `hitless startup` ran in). */
  workingDirectory: string;
  /** Absolute path of node. */
  node: string;
  /** Absolute path of hitless's CLI entry (build/src/cli/main.js). */
  cli: string;
  /** `hitless start` arguments (flags, then `--` and the command). */
  startArgs: string[];
  /** The run dir given by the user, or undefined: /run/<name>, made by systemd. */
  runDir: string | undefined;
  /** `User=` (undefined: root). */
  user: string | undefined;
  drainTimeoutMs: number;
  /** The longest one reload of the configuration takes and still succeeds ({@link reloadBudgetMs}). */
  reloadMs: number;
  /** What `systemctl status` shows beside the unit's name: the unit's name (`myapp (hitless master)`); WorkingDirectory says where. */
  description: string;
}

/** What no unit file line holds as it is: a line break ends the setting, other control characters are refused. */
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * One word as systemd reads the settings that unquote and C-unescape (ExecStart=,
 * Environment=): `%` doubled (specifiers), quoted with backslash escapes when it holds
 * anything but plain characters, control characters as `\xNN` (a line break would end the
 * setting).
 */
function quoteWord(word: string): string {
  const escaped = word.replace(/%/g, '%%');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  const inner = escaped.replace(/[\\"]/g, '\\$&').replace(new RegExp(CONTROL.source, 'g'), (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `"${inner}"`;
}

/**
 * One argument as systemd's ExecStart= reads it: `%` and `$` doubled (specifiers and
 * variables), quoted with backslash escapes when it holds anything but plain characters.
 *
 * @example
 * quoteArg('node');          // 'node'
 * quoteArg('my app/x.js');   // '"my app/x.js"'
 * quoteArg('50%');           // '50%%'
 */
export function quoteArg(arg: string): string {
  return quoteWord(arg.replace(/\$/g, '$$$$'));
}

/**
 * One `NAME=value` as systemd's Environment= reads it: like an ExecStart= argument but
 * with `$` as it is (systemd.exec(5): no variable expansion there, so `$$` would stay two).
 *
 * @example
 * quoteEnv('PATH=/opt/$x/bin'); // '"PATH=/opt/$x/bin"'
 */
export function quoteEnv(assignment: string): string {
  return quoteWord(assignment);
}

/**
 * A path for a setting that takes the rest of its line as one path (WorkingDirectory=):
 * systemd does not unquote there (quotes make it "not absolute" and the unit never
 * starts), so the path goes in as it is with `%` doubled (specifiers). What such a line
 * cannot hold is refused: systemd strips trailing spaces, reads a trailing backslash as a
 * continuation, and a line break ends the setting.
 *
 * @example
 * unitPath('WorkingDirectory', '/srv/my app'); // '/srv/my app'
 * unitPath('WorkingDirectory', '/srv/50%');    // '/srv/50%%'
 */
export function unitPath(setting: string, path: string): string {
  const why = CONTROL.test(path) ? 'holds a line break or another control character'
    : path.endsWith(' ') ? 'ends with a space, which systemd strips'
      : path.endsWith('\\') ? 'ends with a backslash, which systemd reads as "continued on the next line"' : undefined;
  if (why !== undefined) {
    throw new HitlessError('ERR_USAGE', `startup: systemd cannot take ${JSON.stringify(path)} as ${setting}=: the path ${why}; rename the folder (or move the app to one without), then run hitless startup there`);
  }
  return path.replace(/%/g, '%%');
}

/** Is `name` usable as a unit name? */
export function validUnitName(name: string): boolean {
  // `name@` would be a template, which systemctl cannot enable or start without an instance.
  return UNIT_NAME.test(name) && !name.endsWith('.service') && !name.endsWith('@');
}

/**
 * A unit name from an app folder's name: lower case, anything but letters, digits, `-`
 * and `_` turned into `-`.
 *
 * @example
 * unitNameFor('/srv/My App'); // 'my-app'
 */
export function unitNameFor(folder: string): string {
  const base = folder.split('/').filter(Boolean).pop() ?? 'app';
  const name = base.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return name || 'app';
}

/** The settings that bound one reload (MasterConfig's fields). */
export type ReloadBounds = Pick<MasterConfig, 'workers' | 'readyTimeout' | 'drainTimeout' | 'strategy' | 'canary' | 'drain' | 'bootConcurrency' | 'warmup'>;

/**
 * The longest one reload of `c` can take and still succeed, on a machine with `cpus` CPUs
 * (what `bootConcurrency: "auto"` halves): each new worker has `readyTimeout` to be ready
 * and as long again for its warm-up, `bootConcurrency` of them at a time (`rolling`: one
 * slot at a time, each old worker retired before the next); a canary is judged for
 * `canary.duration`; then the reload waits for the old workers up to `drain.reloadWait`
 * (or `drainTimeout`, when lower). systemd bounds `ExecReload=` (and the reload state a
 * `RELOADING=1` enters) by TimeoutStartSec=, so the unit's is set above this.
 *
 * @example
 * reloadBudgetMs(config, availableParallelism()); // defaults, 2 workers, 2 CPUs: 2 × 30 s + 30 s = 90 s
 */
export function reloadBudgetMs(c: ReloadBounds, cpus: number): number {
  const boot = c.readyTimeout * ((c.warmup?.length ?? 0) > 0 ? 2 : 1);
  const retire = Math.min(c.drain.reloadWait, c.drainTimeout);
  const lanes = bootConcurrency(c.bootConcurrency, cpus);
  const booting = (n: number): number => (n <= 0 ? 0 : Math.ceil(n / Math.min(lanes, n)) * boot);
  const oneByOne = (n: number): number => n * (boot + retire);
  if (c.strategy === 'rolling') return oneByOne(c.workers);
  if (c.strategy !== 'canary') return booting(c.workers) + retire;
  const canaries = Math.min(c.canary.workers, c.workers);
  const rest = c.canary.then === 'rolling' ? oneByOne(c.workers) : booting(c.workers - canaries) + retire;
  return booting(canaries) + c.canary.duration + rest;
}

/**
 * The unit file text.
 *
 * @example
 * writeFileSync('/etc/systemd/system/myapp.service', systemdUnit({ name: 'myapp', … }));
 */
export function systemdUnit(o: UnitOptions): string {
  const runDir = o.runDir ?? `/run/${o.name}`;
  const cmd = (args: string[]): string => [o.node, o.cli, ...args].map(quoteArg).join(' ');
  const start = o.runDir === undefined ? [...o.startArgs.slice(0, dashIndex(o.startArgs)), '--run-dir', runDir, ...o.startArgs.slice(dashIndex(o.startArgs))] : o.startArgs;
  const stopSec = Math.ceil((o.drainTimeoutMs + STOP_MARGIN_MS) / 1000);
  const startSec = Math.ceil(Math.max(SYSTEMD_START_TIMEOUT_MS, o.reloadMs + RELOAD_MARGIN_MS) / 1000);
  // Workers started as `node server.js` must find the same node as the master.
  const path = [dirname(o.node), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  return [
    `${UNIT_MARKER}: real paths of node and hitless, explained in docs/systemd.md.`,
    '[Unit]',
    `Description=${o.description} (hitless master)`,
    'After=network.target',
    '',
    '[Service]',
    // The master speaks sd_notify (READY, RELOADING, STATUS, WATCHDOG; MAINPID on `hitless
    // upgrade`), sent by systemd-notify runs and, after an upgrade, by the new master.
    'Type=notify',
    'NotifyAccess=all',
    // User= expands specifiers too; WorkingDirectory= and Environment= each read values their own way (above).
    ...(o.user === undefined ? [] : [`User=${o.user.replace(/%/g, '%%')}`]),
    `WorkingDirectory=${unitPath('WorkingDirectory', o.workingDirectory)}`,
    `Environment=${quoteEnv(`PATH=${[...new Set(path)].join(':')}`)}`,
    `ExecStart=${cmd(['start', ...start])}`,
    '# Waits for the outcome: `systemctl reload` fails when the new version did not go live.',
    `ExecReload=${cmd(['reload', '--run-dir', runDir])}`,
    `# systemd stops waiting for ExecReload= after TimeoutStartSec: above this configuration's longest reload (${Math.ceil(o.reloadMs / 1000)} s) plus ${RELOAD_MARGIN_MS / 1000} s.`,
    `TimeoutStartSec=${startSec}`,
    // Kept across restarts (systemctl restart, Restart=): the compile cache lives there (docs/CONFIG.md).
    ...(o.runDir === undefined ? [`RuntimeDirectory=${o.name}`, 'RuntimeDirectoryMode=0700', 'RuntimeDirectoryPreserve=restart'] : []),
    '# SIGTERM to the master only: it drains its workers (drainTimeout), then exits 0.',
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    `# Above drainTimeout (${Math.round(o.drainTimeoutMs / 1000)} s) plus ${STOP_MARGIN_MS / 1000} s for the app's shutdownDelay.`,
    `TimeoutStopSec=${stopSec}`,
    'Restart=on-failure',
    'RestartSec=2',
    '# Lets the master give a worker that booted at a lower priority (bootNice) its own back at READY.',
    'LimitNICE=+0',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Where the worker command starts in `hitless start` arguments (args.length when none). */
function dashIndex(args: string[]): number {
  const at = args.indexOf('--');
  return at === -1 ? args.length : at;
}
