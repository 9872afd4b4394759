/**
 * `hitless release <dir | archive.tgz> [--id ID]`: install a build as a new release,
 * switch `current` to it, reload the running master and wait for the outcome. Exit 0
 * when it is live (or identical to the current one, or no master runs), 1 when it did
 * not go live and `current` was switched back, 130/143 when SIGINT/SIGTERM stopped it
 * before the switch (the half-made release removed).
 */
import { constants as osConstants } from 'node:os';
import type { Command } from '../command.js';
import { HitlessError, isHitlessError } from '../../errors.js';
import { formatDuration } from '../../config/duration.js';
import type { MasterEvent, ReloadOutcome } from '../../core/types.js';
import { canaryLines } from '../traffic.js';
import { controlReload, releaseContext } from '../../release/context.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../../control/client.js';
import { findRunDir, masterAbove } from '../../control/find.js';
import { deployRelease, type DeployResult } from '../../release/deploy.js';
import { CLIENT_FLAGS, parseFlags } from '../flags.js';
import { ReloadProgress } from '../format.js';
import { interruptWhenNpmParentExits } from '../npm-parent.js';

const usage = `Usage: hitless release <dir | archive.tgz> [--id ID] [--canary] [--json] [--config <path>] [--run-dir <dir>]

Copies a build folder (or safely extracts a .tgz/.tar.gz/.tar) into releases/<id> of the
app folder, runs release.prepare in it (if configured), switches the \`current\` link to it
atomically, asks the running master to reload and waits. If the new release does not go
live, \`current\` is switched back, the reason and the failed workers' output are printed,
and the exit code is 1. A build identical to the current release is skipped (exit 0).
Without a running master, \`current\` is switched and the next \`hitless start\` runs it.
Ctrl-C (SIGINT) or SIGTERM before the switch stops prepare and removes the new release
(exit 130/143); during the reload it waits for the outcome, to switch back if the release
does not go live. A second one ends hitless at once.

Flags:
  --id <id>          release id (default: UTC time + short content hash, 20261121T101500Z-3f9a1c2)
  --canary           go live through a canary (docs/canary.md): a release that fails it is switched back
  --json             print the result as JSON (no progress lines)
  --config <path>    config file of the app; its folder is the app folder (default: ./hitless.json, else the working directory)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

/** Progress lines of a reload on stdout (`release: …`); nothing with --json. */
export function progressPrinter(prefix: string, json: boolean): ((e: MasterEvent) => void) | undefined {
  if (json) return undefined;
  const progress = new ReloadProgress();
  return (event) => {
    const text = progress.update(event);
    if (text) process.stdout.write(`${prefix}: ${text}\n`);
  };
}

/** Prints what a release/rollback did and returns the exit code. */
export function report(prefix: string, result: DeployResult, json: boolean): number {
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  }
  const from = 'previous' in result && result.previous !== undefined ? ` (was ${result.previous})` : '';
  const pruned = 'pruned' in result && result.pruned.length ? `; pruned ${result.pruned.join(', ')}` : '';
  if (result.status === 'skipped') {
    process.stdout.write(`${prefix}: identical to the current release ${result.id}; nothing to do\n`);
  } else if (result.status === 'no-master') {
    process.stdout.write(`${prefix}: current -> releases/${result.id}${from}; no master is running, the next \`hitless start\` will run it${pruned}\n`);
  } else {
    if (result.outcome.canary) for (const line of canaryLines(result.outcome.canary)) process.stdout.write(`${prefix}: ${line}\n`);
    process.stdout.write(`${prefix}: ${result.id} is live${from}, generation ${result.outcome.generation} in ${formatDuration(result.outcome.durationMs)}${pruned}\n`);
  }
  return 0;
}

/** Prints a rollback-on-failure (ERR_RELEASE_ROLLED_BACK) with the workers' output; exit 1. */
export function reportRolledBack(err: HitlessError, json: boolean): number {
  if (json) {
    process.stdout.write(JSON.stringify({ status: 'rolled-back', code: err.code, message: err.message, ...err.details }, null, 2) + '\n');
    return 1;
  }
  process.stderr.write(`hitless: ${err.message} (${err.code})\n`);
  const outcome = err.details.outcome as ReloadOutcome | undefined;
  if (outcome?.canary) for (const line of canaryLines(outcome.canary, outcome)) process.stderr.write(`${line}\n`);
  const output = (err.details.output as string[] | undefined) ?? [];
  if (output.length) {
    process.stderr.write('last output of the new workers:\n');
    for (const line of output) process.stderr.write(`  | ${line}\n`);
  }
  return 1;
}

/**
 * Refuses to make a second app inside another one's release: run in a release folder of an
 * app whose master runs (its `current`, which resolves into its releases/), with no
 * `releases/` here, no master answering here and no --config/--run-dir saying this is meant,
 * `release` would create `releases/` and `current` there and say no master runs. (Any other
 * folder below a master's app folder is fine: a first release in ~/app2 under a master of ~.)
 *
 * @throws HitlessError ERR_USAGE naming the master above and where to run the command.
 */
export async function refuseInsideAnotherApp(command: string, appDir: string, runDir: string, flags: { config?: string | undefined; 'run-dir'?: string | undefined }): Promise<void> {
  if (flags.config !== undefined || flags['run-dir'] !== undefined || existsSync(join(appDir, 'releases'))) return;
  const answers = await controlRequest(runDir, 'status', {}, { timeoutMs: 1000 }).then(() => true, () => false);
  if (answers) return;
  const above = await masterAbove(appDir, undefined, { inReleases: true });
  if (above !== undefined) throw new HitlessError('ERR_USAGE', `${command}: ${appDir} is a release of another app, with no releases and no master of its own; ${above}`);
}

/**
 * SIGINT/SIGTERM before the switch stop the install instead of killing hitless mid-prepare,
 * which left an unprepared release behind: prepare is stopped and the release removed.
 * Once the reload is asked for (`reloading(reason)`), a first signal only says that
 * hitless waits for the reload's outcome: killed then, it left `current` on a release the
 * master may refuse, since switching back on a failed reload is this command's job. A
 * second signal ends hitless at once.
 */
function stopInstallOnSignal(): { signal: AbortSignal; reloading(reason: string): void; restore(): void } {
  const controller = new AbortController();
  let reload: string | undefined;
  let stopWatchingNpm = (): void => {};
  const restore = (): void => {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    stopWatchingNpm();
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (!controller.signal.aborted) {
      controller.abort(signal);
      if (reload !== undefined) {
        process.stderr.write(`hitless: ${signal} during the reload of ${reload}: waiting for its outcome, to switch current back if it fails (${signal} again to leave now; current then stays as it is whatever the master decides)\n`);
      }
      return;
    }
    restore();
    process.kill(process.pid, signal);
  }
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  // Run by npx, a SIGTERM for hitless ends npm's shell instead (src/cli/npm-parent.ts).
  stopWatchingNpm = interruptWhenNpmParentExits('release');
  return { signal: controller.signal, reloading: (reason) => (reload = reason), restore };
}

/**
 * Prints a failed prepare (ERR_RELEASE_PREPARE) with its code, as the other release
 * failures; exit 1. With --json the CLI's own error object says it (`hitless deploy` reads it).
 */
function reportPrepareFailed(err: HitlessError): number {
  process.stderr.write(`hitless: ${err.message} (${err.code})\n`);
  return 1;
}

/** Prints an install stopped by a signal (ERR_RELEASE_INTERRUPTED); exit 128 + the signal's number, as a shell reports it. */
function reportInterrupted(err: HitlessError, signal: AbortSignal, json: boolean): number {
  if (json) process.stdout.write(JSON.stringify({ status: 'interrupted', code: err.code, message: err.message, ...err.details }, null, 2) + '\n');
  else process.stderr.write(`hitless: ${err.message} (${err.code})\n`);
  return 128 + (osConstants.signals[signal.reason as NodeJS.Signals] ?? 0);
}

export const command: Command = {
  name: 'release',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags('release', argv, {
      ...CLIENT_FLAGS, id: { type: 'string' }, json: { type: 'boolean' }, canary: { type: 'boolean' },
    }, true);
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const [source, ...extra] = positionals;
    if (source === undefined || extra.length > 0) {
      throw new HitlessError('ERR_USAGE', 'give exactly one build folder or archive: `hitless release ./dist` or `hitless release app.tgz` (see `hitless release --help`)');
    }
    const ctx = releaseContext({ config: values.config, runDir: values['run-dir'] });
    ctx.runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
    await refuseInsideAnotherApp('release', ctx.appDir, ctx.runDir, values);
    const json = values.json === true;
    const reload = controlReload(ctx.runDir, progressPrinter('release', json), values.canary ? { strategy: 'canary' } : {});
    const stop = stopInstallOnSignal();
    try {
      const result = await deployRelease(source, {
        appDir: ctx.appDir, prepare: ctx.release.prepare, keep: ctx.release.keep,
        ...(values.id !== undefined ? { id: values.id } : {}),
        reload: (why) => {
          stop.reloading(why);
          return reload(why);
        },
        onOutput: (stream, chunk) => (json ? process.stderr : process[stream]).write(chunk),
        signal: stop.signal,
      });
      return report('release', result, json);
    } catch (err) {
      if (isHitlessError(err, 'ERR_RELEASE_ROLLED_BACK')) return reportRolledBack(err, json);
      if (isHitlessError(err, 'ERR_RELEASE_INTERRUPTED')) return reportInterrupted(err, stop.signal, json);
      if (isHitlessError(err, 'ERR_RELEASE_PREPARE') && !json) return reportPrepareFailed(err);
      throw err;
    } finally {
      stop.restore();
    }
  },
};
