/**
 * `hitless rollback [id]`: switch `current` back to an earlier release (default: the one
 * installed before the current one) and reload, with the same outcome handling as
 * `hitless release`: exit 1 and `current` restored when it does not go live.
 */
import type { Command } from '../command.js';
import { HitlessError, isHitlessError } from '../../errors.js';
import { controlReload, releaseContext } from '../../release/context.js';
import { findRunDir } from '../../control/find.js';
import { goLive } from '../../release/deploy.js';
import { listReleaseIds, readCurrent, validateReleaseId } from '../../release/layout.js';
import { releasesByAge } from '../../release/prune.js';
import { readState, unfinished } from '../../release/state.js';
import { CLIENT_FLAGS, parseFlags } from '../flags.js';
import { interruptWhenNpmParentExits } from '../npm-parent.js';
import { progressPrinter, refuseInsideAnotherApp, report, reportRolledBack } from './release.js';

const usage = `Usage: hitless rollback [id] [--json] [--config <path>] [--run-dir <dir>]

Switches \`current\` to release <id> (default: the newest release installed before the
current one that did not fail to go live, whose prepare finished and whose content differs
from current's, else the one current pointed at before the last switch), asks the running
master to reload and waits. If it does not go live, \`current\` is switched back and the exit code is 1.
\`hitless releases\` lists the ids.

Flags:
  --json             print the result as JSON
  --config <path>    config file of the app (default: ./hitless.json, else the working directory)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

/**
 * The default rollback target: the newest release older than `current` that did not
 * fail to go live, whose prepare finished and whose content differs from current's, else
 * the recorded previous one (unless it has current's content).
 *
 * @example
 * await defaultRollbackTarget('/srv/app'); // 'v1' when current is v2
 */
export async function defaultRollbackTarget(appDir: string, current: string | undefined): Promise<string | undefined> {
  const state = await readState(appDir);
  const aged = await releasesByAge(appDir, state);
  const at = aged.findIndex((r) => r.id === current);
  // A copy of current (the same build released again after a rollback: a new id, the same
  // hash) is no way back: switching to it would change nothing.
  const currentHash = current === undefined ? undefined : state.releases[current]?.hash;
  const copy = (id: string): boolean => currentHash !== undefined && state.releases[id]?.hash === currentHash;
  // Nor is a release whose prepare did not finish (a killed release).
  const usable = (id: string): boolean => state.releases[id]?.outcome?.result !== 'rolled-back' && unfinished(state.releases[id]) === undefined && !copy(id);
  const older = aged.slice(0, Math.max(0, at)).reverse().find((r) => usable(r.id));
  if (older) return older.id;
  return state.previous !== current && state.previous !== undefined && !copy(state.previous) ? state.previous : undefined;
}

export const command: Command = {
  name: 'rollback',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags('rollback', argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } }, true);
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    if (positionals.length > 1) throw new HitlessError('ERR_USAGE', 'give at most one release id (see `hitless rollback --help`)');
    const ctx = releaseContext({ config: values.config, runDir: values['run-dir'] });
    ctx.runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
    await refuseInsideAnotherApp('rollback', ctx.appDir, ctx.runDir, values);
    const json = values.json === true;
    const current = await readCurrent(ctx.appDir);
    const wanted = positionals[0] === undefined ? await defaultRollbackTarget(ctx.appDir, current) : validateReleaseId(positionals[0]);
    if (wanted === undefined) {
      throw new HitlessError('ERR_RELEASE_NOT_FOUND', `no earlier release to roll back to in ${ctx.appDir}/releases (current: ${current ?? 'none'}; failed releases and copies of current do not count): name one, \`hitless releases\` lists them`);
    }
    if (!(await listReleaseIds(ctx.appDir)).includes(wanted)) {
      throw new HitlessError('ERR_RELEASE_NOT_FOUND', `release ${wanted} does not exist in ${ctx.appDir}/releases; \`hitless releases\` lists them`);
    }
    if (wanted === current) {
      process.stdout.write(`rollback: ${wanted} is already current; nothing to do\n`);
      return 0;
    }
    // Run by npx, a SIGTERM for hitless ends npm's shell instead: end as that SIGTERM would (src/cli/npm-parent.ts).
    const stopWatchingNpm = interruptWhenNpmParentExits('rollback');
    try {
      const result = await goLive(wanted, {
        appDir: ctx.appDir, keep: ctx.release.keep, reason: `rollback to ${wanted}`, subject: `rollback to ${wanted}`,
        reload: controlReload(ctx.runDir, progressPrinter('rollback', json)),
      });
      return report('rollback', result, json);
    } catch (err) {
      if (isHitlessError(err, 'ERR_RELEASE_ROLLED_BACK')) return reportRolledBack(err, json);
      throw err;
    } finally {
      stopWatchingNpm();
    }
  },
};
