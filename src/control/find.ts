/**
 * Which master a client command talks to, when the run dir computed from the folder (the
 * rule `hitless start` follows, config/locate.ts) has no master: the master on this machine
 * whose app folder is this one. That is the case of a master started by systemd (`hitless
 * startup` gives it `--run-dir /run/<name>`) or from a shell with another XDG_RUNTIME_DIR:
 * `hitless status` in the app folder finds it anyway, as `pm2 status` would.
 */
import { realpathSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { findConfigFile } from '../config/file.js';
import { locateRunDir } from '../config/locate.js';
import { controlSocketPath } from '../config/rundir.js';
import { discoverMasters } from './discover.js';

/** Resolves true when something accepts on the control socket of `runDir`. */
function answers(runDir: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect(controlSocketPath(runDir));
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * The run dir of this app's master: `--run-dir` as given; else the computed one when a
 * master answers there; else the run dir of the one running master whose app folder is
 * this app's; else the computed one (so the "no master" error names where it looked).
 * A config file that cannot be parsed is reported to `warn` (stderr by default) and does not
 * stop the search: the running master is what the command is for.
 *
 * @example
 * const runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
 */
export async function findRunDir(options: {
  config?: string | undefined; runDir?: string | undefined; cwd?: string; env?: NodeJS.ProcessEnv;
  warn?: (line: string) => void;
}): Promise<string> {
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const computed = locateRunDir({
    ...options,
    unreadable: (err) => warn(`hitless: warning: ${err.message} (a running master keeps the configuration it has; fix the file before the next reload)`),
  });
  if (options.runDir !== undefined || (await answers(computed))) return computed;
  const cwd = options.cwd ?? process.cwd();
  const configPath = findConfigFile(options.config, cwd);
  const appDir = real(configPath ? dirname(configPath) : cwd);
  const mine = (await discoverMasters({ env: options.env })).filter((m) => m.status?.app !== undefined && real(m.status.app.dir) === appDir);
  return mine.length === 1 ? mine[0]!.runDir : computed;
}
