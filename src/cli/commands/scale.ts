/**
 * `hitless scale N`: change how many workers the serving generation runs, without a
 * reload. Starting workers waits until they are READY; stopping drains the extra ones.
 * Exit 0 once the generation has N workers, 1 when it could not (it keeps its count).
 */
import { parseWorkerCount } from '../../config/workers.js';
import type { Command } from '../command.js';
import { HitlessError } from '../../errors.js';
import { controlRequest } from '../../control/client.js';
import { formatDuration } from '../../config/duration.js';
import type { MasterEvent, ScaleOutcome } from '../../core/types.js';
import { connectionsPhrase } from '../format.js';
import { CLIENT_FLAGS, parseFlags, parseTimeoutFlag } from '../flags.js';
import { findRunDir } from '../../control/find.js';

const usage = `Usage: hitless scale <workers> [--json] [--timeout <dur>] [--config <path>] [--run-dir <dir>]

Gives the serving generation <workers> workers now, without a reload: new workers start
(on the same sockets), the command waits until they are ready, and the serving workers hand
them their share of their kept-alive connections; or the extra workers hand theirs to the
workers that stay, drain and exit. Later reloads keep this count until a reload reads a different "workers"
value from the configuration than the one in force when you scaled (docs/CLI.md).
Exit 0 once done, 1 if the new workers failed (the count is unchanged).

Flags:
  --json             print the outcome as JSON
  --timeout <dur>    stop waiting after this long (the scale goes on in the master)
  --config <path>    config file of the app (default: ./hitless.json if it exists)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

/** Parses the worker count argument. */
export function parseWorkers(arg: string | undefined): number {
  if (arg === undefined) throw new HitlessError('ERR_USAGE', 'hitless scale needs a worker count: `hitless scale 4` (see `hitless scale --help`)');
  return parseWorkerCount(arg, 'scale');
}

/** One progress line per scale event worth telling (undefined for the others). */
function describe(e: MasterEvent, generation: { id: number | undefined }): string | undefined {
  if (e.type === 'scale-start') {
    generation.id = e.generation;
    return e.to > e.from ? `generation ${e.generation}: starting ${e.to - e.from} worker${e.to - e.from === 1 ? '' : 's'} (${e.from} → ${e.to})`
      : e.to < e.from ? `generation ${e.generation}: draining ${e.from - e.to} worker${e.from - e.to === 1 ? '' : 's'} (${e.from} → ${e.to})`
        : `generation ${e.generation} already has ${e.to} worker${e.to === 1 ? '' : 's'}`;
  }
  if (!('generation' in e) || e.generation !== generation.id) return undefined;
  if (e.type === 'reload-draining' && e.to === e.generation) return 'the workers that stay take their connections (hand-over)';
  if (e.type === 'scale-rebalance') return `the serving workers hand ${Math.round(e.share * 100)}% of their kept-alive connections to the new ones`;
  if (e.type === 'worker-ready') return `worker ${e.generation}.${e.slot} ready (pid ${e.pid}, ${formatDuration(e.ms)})`;
  if (e.type === 'worker-exit') return `worker ${e.generation}.${e.slot} exited${e.planned ? '' : ` (${e.signal ?? `code ${String(e.code)}`})`}`;
  return undefined;
}

export const command: Command = {
  name: 'scale',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags('scale', argv, { ...CLIENT_FLAGS, json: { type: 'boolean' }, timeout: { type: 'string' } }, true);
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    if (positionals.length > 1) throw new HitlessError('ERR_USAGE', `hitless scale takes one worker count, got ${positionals.join(' ')}`);
    const workers = parseWorkers(positionals[0]);
    const timeoutMs = parseTimeoutFlag(values.timeout);
    const runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
    const generation = { id: undefined as number | undefined };
    const onEvent = values.json ? undefined : (e: MasterEvent): void => {
      const line = describe(e, generation);
      if (line) process.stdout.write(`scale: ${line}\n`);
    };
    const outcome = (await controlRequest(runDir, 'scale', { workers }, { onEvent, timeoutMs })) as ScaleOutcome;
    if (values.json) {
      process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
      return outcome.ok ? 0 : 1;
    }
    if (outcome.ok) {
      const forced = outcome.forced ? `, ${outcome.forced} killed at drainTimeout` : '';
      // What moved, on a line of its own: the done line keeps its documented shape.
      const moved = connectionsPhrase(outcome.connections).replace(/^, /, '');
      if (moved) process.stdout.write(`scale: ${moved} ${outcome.to > outcome.from ? 'to the new workers' : 'to the workers that stay'}\n`);
      process.stdout.write(`scale: done in ${formatDuration(outcome.durationMs)}, generation ${outcome.generation} has ${outcome.to} worker${outcome.to === 1 ? '' : 's'}${forced}\n`);
      return 0;
    }
    const err = outcome.error;
    process.stderr.write(`${scaleFailureLine(outcome)}\n`);
    for (const line of err?.output ?? []) process.stderr.write(`  | ${line}\n`);
    return 1;
  },
};

/** Why a scale is refused before anything is tried: busy, an upgrade under way, the master stopping, a bad count. */
const SCALE_REFUSALS: ReadonlySet<string> = new Set(['ERR_SCALE_BUSY', 'ERR_UPGRADE_BUSY', 'ERR_STOPPING', 'ERR_USAGE']);

/**
 * The one line of a scale that did not happen: "refused" when nothing was tried (busy, an
 * upgrade under way, the master stopping: CLI.md's word, as `reload` and `upgrade` say it),
 * "failed" when new workers did not become ready.
 *
 * @example
 * scaleFailureLine(outcome); // 'hitless: scale refused: a reload or another scale is in progress; … (ERR_SCALE_BUSY); generation 3 keeps 2 workers'
 */
export function scaleFailureLine(outcome: ScaleOutcome): string {
  const err = outcome.error;
  const refused = err !== undefined && SCALE_REFUSALS.has(err.code);
  const why = err ? `${err.message.replace(/; no scale$/, '')} (${err.code})` : 'unknown error';
  return `hitless: scale ${refused ? 'refused' : 'failed'}: ${why}; generation ${outcome.generation} keeps ${outcome.from} worker${outcome.from === 1 ? '' : 's'}`;
}
