/**
 * `hitless stop`: ask the master to drain its workers and exit, and wait until it has.
 */
import type { Command } from '../command.js';
import { controlRequest } from '../../control/client.js';
import type { DrainingGeneration } from '../../core/types.js';
import { describeDraining } from '../format.js';
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
    const result = (await controlRequest(runDir, 'stop', { force: values.force === true }, { timeoutMs })) as { pid: number; draining?: DrainingGeneration[] };
    process.stdout.write(`stopping master (pid ${result.pid})${values.force ? ', killing workers' : ', draining workers'}\n`);
    // What the stop waits for besides the serving workers: generations still draining their
    // WebSockets in the background, each until its deadline at the latest (the master's reply says).
    for (const d of result.draining ?? []) process.stdout.write(`  also draining ${describeDraining(d)}\n`);
    if (!(await waitForExit(result.pid, timeoutMs))) {
      throw new HitlessError('ERR_CONTROL_TIMEOUT', `master (pid ${result.pid}) is still stopping after ${values.timeout}`);
    }
    process.stdout.write(`master stopped\n`);
    return 0;
  },
};
