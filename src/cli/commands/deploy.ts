/**
 * `hitless deploy <artifact>`: roll a release across the hosts of hitless.json's `deploy`
 * section (src/fleet/). Exit 0 when every host took it, 1 when it stopped and rolled back
 * (with the per-host table), 1 for a failed preflight (nothing changed) or a busy lock.
 */
import type { Command } from '../command.js';
import { HitlessError, isHitlessError } from '../../errors.js';
import { loadFleetConfig } from '../../fleet/config.js';
import { describeFailure, formatEvent, formatTable } from '../../fleet/report.js';
import { deployFleet } from '../../fleet/rollout.js';
import { exitCodeOf } from '../exit-codes.js';
import { parseFlags } from '../flags.js';
import { interruptWhenNpmParentExits } from '../npm-parent.js';

const usage = `Usage: hitless deploy <artifact.tgz> [--id ID] [--dry-run] [--json] [--config <path>]

Rolls a release across the hosts in the deploy section of hitless.json (docs/fleet.md):
checks every host first (reachable, hitless installed, master running, no release in
progress, healthy) and changes nothing if one fails; then releases to the first host alone
(the canary) and to the others in batches: upload (sha256 checked on arrival), \`hitless
release\` on the host, then its health URL must answer 2xx for the settle time. At the
first failure it stops, runs \`hitless rollback\` on every host already done, prints a
table of every host and exits 1. One deploy at a time (a lock file beside hitless.json).

Flags:
  --id <id>          release id on every host (default: UTC time + short sha256 of the artifact)
  --dry-run          run the preflight and print the plan; change nothing
  --json             print the outcome as JSON on stdout (progress goes to stderr)
  --config <path>    config file with the deploy section (default: ./hitless.json)
  -h, --help         show this help`;

export const command: Command = {
  name: 'deploy',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags('deploy', argv, {
      config: { type: 'string' }, id: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }, true);
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const [artifact, ...extra] = positionals;
    if (artifact === undefined || extra.length > 0) {
      throw new HitlessError('ERR_USAGE', 'give exactly one release archive: `hitless deploy app.tgz` (see `hitless deploy --help`)');
    }
    const json = values.json === true;
    try {
      return await deploy(artifact, values, json);
    } catch (err) {
      if (!isHitlessError(err)) throw err;
      // A script reading --json gets JSON for a refused deploy too (busy, failed preflight).
      if (json && err.code.startsWith('ERR_DEPLOY_')) {
        process.stdout.write(JSON.stringify({ status: 'refused', code: err.code, message: err.message, ...err.details }, null, 2) + '\n');
      }
      // One format for every refusal, as for a failed deploy: the message, then its code.
      process.stderr.write(`hitless: ${err.message} (${err.code})\n`);
      return exitCodeOf(err.code);
    }
  },
};

/** Runs the deploy and prints its outcome; returns the exit code (throws what refuses it). */
async function deploy(artifact: string, values: { config?: string | undefined; id?: string | undefined; 'dry-run'?: boolean | undefined }, json: boolean): Promise<number> {
  const progress = json ? process.stderr : process.stdout;
  const config = loadFleetConfig(values.config, process.cwd());
  // Ctrl-C (or a CI cancel) stops the rollout before its next batch and rolls back the
  // hosts done; a second one ends the process at once, leaving hosts as they are.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      process.kill(process.pid, signal);
      return;
    }
    progress.write(` WARN ${signal}: stopping after the running step and rolling back; ${signal} again stops at once, leaving hosts as they are\n`);
    interrupt.abort(new Error(signal));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  // Run by npx, a SIGTERM for hitless ends npm's shell instead (src/cli/npm-parent.ts).
  const stopWatchingNpm = interruptWhenNpmParentExits('deploy');
  let result;
  try {
    result = await deployFleet({
      config, artifact,
      ...(values.id !== undefined ? { id: values.id } : {}),
      dryRun: values['dry-run'] === true,
      onEvent: (e) => progress.write(formatEvent(e) + '\n'),
      signal: interrupt.signal,
    });
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    stopWatchingNpm();
  }
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    process.stdout.write(`\n${formatTable(result)}\n`);
    if (result.status === 'live') process.stdout.write(`\ndeploy ${result.id}: live on ${result.hosts.length} host${result.hosts.length === 1 ? '' : 's'}\n`);
  }
  if (result.status !== 'failed') return 0;
  process.stderr.write(`hitless: ${describeFailure(result)} (ERR_DEPLOY_FAILED)\n`);
  return 1;
}
