/**
 * `hitless startup`: the master as a systemd service, the way `pm2 startup` users expect,
 * without writing a unit by hand. Validates the configuration as `hitless start` would,
 * then writes a unit with the real paths of node and hitless (src/cli/unit.ts); with
 * --install it puts the unit in /etc/systemd/system and runs `systemctl daemon-reload` and
 * `systemctl enable --now`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism, userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { HitlessError } from '../../errors.js';
import { findConfigFile } from '../../config/file.js';
import { reloadBudgetMs, systemdUnit, UNIT_MARKER, unitNameFor, validUnitName } from '../unit.js';
import { startFlagsToConfig } from './start.js';
import { withoutDetachFlags } from '../detach.js';
import { userExists } from '../../ops/privileges.js';
import { isPnpPath, stablePath } from '../../master/install-layout.js';

/** Where --install puts the unit (systemd's folder for the administrator's units). */
export const SYSTEM_UNIT_DIR = '/etc/systemd/system';
/** Folders holding units a package installed: a name taken there is not ours to shadow. */
const PACKAGE_UNIT_DIRS = ['/usr/lib/systemd/system', '/lib/systemd/system'];

const usage = `Usage: hitless startup [--name NAME] [--user USER] [--output FILE] [--install [--unit-dir DIR]]
                       [start flags...] [-- command args...]

Writes a systemd unit that runs this app's master at boot and restarts it if it dies,
with the real paths of node and hitless (no npx, no PATH lookup), \`systemctl reload\`
waiting for the reload's outcome (TimeoutStartSec above the longest reload of this
configuration), and a stop timeout above drainTimeout. Takes the same arguments as
\`hitless start\` (they are validated first) and runs the master in this folder.

Flags:
  --name <name>      unit name (default: this folder's name): <name>.service
  --user <user>      User= of the service (default: you, unless you are root)
  --output <file>    where to write the unit (default: ./<name>.service; - for stdout)
  --install          write it to ${SYSTEM_UNIT_DIR}/<name>.service, then run
                     systemctl daemon-reload and systemctl enable --now <name> (needs root)
  --unit-dir <dir>   with --install: another folder than ${SYSTEM_UNIT_DIR}
  -h, --help         show this help

Examples (in /srv/myapp):
  hitless startup --listen 127.0.0.1:3000 --workers 2 -- node server.js
  sudo cp myapp.service /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now myapp`;

const STARTUP_FLAGS = {
  name: { type: 'string' }, user: { type: 'string' }, output: { type: 'string' },
  install: { type: 'boolean' }, 'unit-dir': { type: 'string' },
} as const;

/**
 * hitless's CLI as the unit names it: a path that the package manager's next install of
 * hitless points at the new copy, so the service starts the hitless installed at each start
 * (h23 F5). With pnpm, the app's `node_modules/hitless` symlink instead of one version's
 * store folder (which runs that version forever, and is gone after a prune); under Yarn
 * Plug'n'Play there is none: refused, with the fix.
 *
 * @throws HitlessError ERR_USAGE under Yarn Plug'n'Play.
 * @example
 * unitCliPath('/srv/app/node_modules/.pnpm/hitless@0.1.0/node_modules/hitless/build/src/cli/main.js', '/srv/app');
 * // '/srv/app/node_modules/hitless/build/src/cli/main.js'
 */
export function unitCliPath(file: string, appDir: string): string {
  if (isPnpPath(file)) {
    throw new HitlessError('ERR_USAGE', `startup: this hitless runs from Yarn Plug'n'Play's cache (${file}), which only Yarn's runtime reads, at a path that changes with each version: ` +
      "a unit naming it could not start, nor could its workers require('hitless'); install the app with a node_modules folder " +
      '(`nodeLinker: node-modules` in .yarnrc.yml, then `yarn install`) and run `yarn hitless startup` again (docs/systemd.md)');
  }
  return stablePath(file, appDir);
}

/** `argv` without the flags only `hitless startup` reads (what the unit's `hitless start` gets). */
function startArgsOf(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...out, ...argv.slice(i)];
    const name = arg.replace(/^--/, '').replace(/=.*$/, '');
    if (arg.startsWith('--') && Object.hasOwn(STARTUP_FLAGS, name)) {
      if (!arg.includes('=') && STARTUP_FLAGS[name as keyof typeof STARTUP_FLAGS].type === 'string') i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/** Refuses to shadow a unit of the same name that `hitless startup` did not write. */
function refuseForeignUnit(name: string, target: string): void {
  for (const path of [target, ...PACKAGE_UNIT_DIRS.map((d) => join(d, `${name}.service`))]) {
    if (!existsSync(path)) continue;
    if (readFileSync(path, 'utf8').startsWith(UNIT_MARKER)) continue;
    throw new HitlessError('ERR_USAGE', `startup: a unit named ${name}.service exists already (${path}) and was not written by hitless startup; choose another name with --name`);
  }
}

function systemctl(args: string[]): void {
  const r = spawnSync('systemctl', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new HitlessError('ERR_USAGE', `startup: cannot run systemctl ${args.join(' ')}: ${r.error.message} (is this a systemd machine?)`);
  if (r.status !== 0) {
    // In a container or on a machine booted without systemd, systemctl cannot work at all.
    const why = existsSync('/run/systemd/system') ? 'see `systemctl status` and `journalctl -xe`'
      : 'systemd does not run this machine (no /run/systemd/system: a container, or another init); install the unit where systemd runs, or use the supervisord or Docker setup (docs/supervisord.md, docs/docker.md)';
    throw new HitlessError('ERR_START_FAILED', `startup: systemctl ${args.join(' ')} exited with code ${String(r.status)}; ${why}`);
  }
}

export const command: Command = {
  name: 'startup',
  usage,
  async run(argv) {
    const { help, printConfig, flags, extra } = startFlagsToConfig(argv, 'startup', STARTUP_FLAGS);
    if (help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const opts = extra as unknown as { name?: string; user?: string; output?: string; install?: boolean; 'unit-dir'?: string };
    // Flags that would be silently dropped or put into the unit where they make no sense.
    if (printConfig) throw new HitlessError('ERR_USAGE', 'startup: --print-config is for `hitless start`; startup writes a unit (`--output -` prints it)');
    if (opts['unit-dir'] !== undefined && opts.install !== true) throw new HitlessError('ERR_USAGE', 'startup: --unit-dir goes with --install (without it, --output names the file)');
    // systemd would refuse to start the unit (status 217/USER) long after this command said it was written.
    if (opts.user !== undefined && !userExists(opts.user)) throw new HitlessError('ERR_USAGE', `startup: --user ${JSON.stringify(opts.user)}: no such user on this machine (not in /etc/passwd nor getent passwd); create it first, or give another`);
    const { loadConfig } = await import('../../config/load.js');
    const config = loadConfig({ flags });
    const name = opts.name ?? unitNameFor(config.appDir);
    if (!validUnitName(name)) throw new HitlessError('ERR_USAGE', `startup: --name ${JSON.stringify(name)} is not a unit name; use letters, digits, "-", "_" (like myapp)`);
    const startArgs = withoutDetachFlags(startArgsOf(argv));
    // The file the master would read anyway, named in full so the unit says what it runs.
    const configFile = findConfigFile(flags.config, process.cwd());
    if (flags.config === undefined && configFile !== undefined) startArgs.unshift('--config', configFile);
    const me = userInfo();
    const unit = systemdUnit({
      name,
      workingDirectory: process.cwd(),
      node: realpathSync(process.execPath),
      cli: unitCliPath(realpathSync(fileURLToPath(new URL('../main.js', import.meta.url))), process.cwd()),
      startArgs,
      runDir: flags.runDir === undefined ? undefined : config.runDir,
      user: opts.user ?? (me.uid === 0 ? undefined : me.username),
      drainTimeoutMs: config.drainTimeout,
      reloadMs: reloadBudgetMs(config, availableParallelism()),
      description: name,
    });
    if (!opts.install) {
      if (opts.output === '-') {
        process.stdout.write(unit);
        return 0;
      }
      const file = resolve(opts.output ?? `${name}.service`);
      writeFileSync(file, unit);
      process.stdout.write(`wrote ${file}\nInstall and start it (as root):\n` +
        `  sudo cp ${file} ${SYSTEM_UNIT_DIR}/${name}.service && sudo systemctl daemon-reload && sudo systemctl enable --now ${name}\n` +
        `or run this command again with --install as root. Then: systemctl status ${name}, systemctl reload ${name}, journalctl -u ${name} -f\n`);
      return 0;
    }
    const target = join(resolve(opts['unit-dir'] ?? SYSTEM_UNIT_DIR), `${name}.service`);
    refuseForeignUnit(name, target);
    const before = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
    try {
      writeFileSync(target, unit);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw err;
      throw new HitlessError('ERR_USAGE', `startup: cannot write ${target} (${code}): installing needs root; run \`sudo ${process.execPath} ${fileURLToPath(new URL('../main.js', import.meta.url))} startup ${argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\``);
    }
    process.stdout.write(`wrote ${target}\n`);
    try {
      systemctl(['daemon-reload']);
    } catch (err) {
      // Nothing was installed: the unit file goes back to what it was.
      if (before === undefined) rmSync(target, { force: true });
      else writeFileSync(target, before);
      process.stdout.write(`${before === undefined ? 'removed' : 'restored'} ${target}\n`);
      throw err;
    }
    systemctl(['enable', '--now', `${name}.service`]);
    process.stdout.write(`${name} is enabled and started: systemctl status ${name}, systemctl reload ${name}, journalctl -u ${name} -f\n`);
    // `enable --now` leaves a running service as it is, and a reload re-reads hitless.json
    // with the start flags the master began with, not the unit's new ones.
    if (before !== undefined && before !== unit) {
      process.stdout.write(`the unit changed: if ${name} was running already, it still runs the old command line until \`systemctl restart ${name}\` (a reload keeps the flags it started with)\n`);
    }
    return 0;
  },
};
