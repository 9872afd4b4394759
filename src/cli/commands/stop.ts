/**
 * `hitless stop`: ask the master to drain its workers and exit, and wait until it has.
 */
import type { Command } from '../command.js';
import { controlRequest } from '../../control/client.js';
import type { DrainingGeneration } from '../../core/types.js';
import { describeDraining, plural } from '../format.js';
import { CLIENT_FLAGS, parseFlags, parseTimeoutFlag } from '../flags.js';
import { findRunDir } from '../../control/find.js';
import { HitlessError } from '../../errors.js';
import { waitForExit } from '../../process-alive.js';

const usage = `Usage: hitless stop [--force] [--timeout <dur>] [--config <path>] [--run-dir <dir>]

Stops the master gracefully: workers get their stop signal and drainTimeout to finish
in-flight requests, then the master exits. Waits until the master process is gone.

Flags:
  --force            SIGKILL the workers at once instead of draining
  --timeout <dur>    stop waiting after this long (the master keeps stopping)
  --config <path>    config file of the app (default: ./hitless.json if it exists)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;


export const command: Command = {
  name: 'stop',
  usage,
  async run(argv) {
    const { values } = parseFlags('stop', argv, { ...CLIENT_FLAGS, force: { type: 'boolean' }, timeout: { type: 'string' } });
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const timeoutMs = parseTimeoutFlag(values.timeout);
    const runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
    const began = performance.now();
    const stillStopping = (pid: number): HitlessError => new HitlessError('ERR_CONTROL_TIMEOUT', `master (pid ${pid}) is still stopping after ${values.timeout}`);
    let forced = 0;
    let reply: { pid: number; draining?: DrainingGeneration[] } | undefined;
    try {
      // The answer comes at once, before the drain; `follow` keeps the connection for the
      // stop's end, which says how many workers were killed at drainTimeout.
      await controlRequest(runDir, 'stop', { force: values.force === true, follow: true }, {
        timeoutMs,
        untilClose: true,
        onAnswer: (result) => {
          reply = result as typeof reply;
          process.stdout.write(`stopping master (pid ${reply!.pid})${values.force ? ', killing workers' : ', draining workers'}\n`);
          // What the stop waits for besides the serving workers: generations still draining their
          // WebSockets in the background, each until its deadline at the latest (the master's reply says).
          for (const d of reply!.draining ?? []) process.stdout.write(`  also draining ${describeDraining(d)}\n`);
        },
        onEvent: (event) => {
          if (event.type === 'master-stop') forced = event.forced ?? 0;
        },
      });
    } catch (err) {
      if (reply === undefined || !(err instanceof HitlessError) || err.code !== 'ERR_CONTROL_TIMEOUT') throw err;
      throw stillStopping(reply.pid);
    }
    // The connection ends as the master exits; its process is gone a moment later (within
    // what is left of --timeout, not a second --timeout).
    const left = timeoutMs === undefined ? undefined : Math.max(1, timeoutMs - (performance.now() - began));
    if (!(await waitForExit(reply!.pid, left))) throw stillStopping(reply!.pid);
    process.stdout.write(forced > 0 && !values.force
      ? `master stopped; ${plural(forced, 'worker')} still running at drainTimeout ${forced === 1 ? 'was' : 'were'} killed (SIGKILL): requests in flight there were cut\n`
      : `master stopped\n`);
    return 0;
  },
};
