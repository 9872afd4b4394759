/**
 * `hitless status`: what the master is running right now.
 */
import type { Command } from '../command.js';
import { controlRequest } from '../../control/client.js';
import type { StatusSnapshot } from '../../core/types.js';
import { CLIENT_FLAGS, parseFlags } from '../flags.js';
import { locateRunDir } from '../../config/locate.js';
import { formatStatus } from '../format.js';

const usage = `Usage: hitless status [--json] [--config <path>] [--run-dir <dir>]

Shows the master (pid, uptime, state), the serving generation and release, the
listeners, every worker (generation.slot, pid, state, uptime, restarts, memory, CPU,
last STATUS= text) and the last reload's result.

Flags:
  --json             print the raw status snapshot as JSON
  --config <path>    config file of the app (default: ./hitless.json if it exists)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

export const command: Command = {
  name: 'status',
  summary: 'show the master, its workers and the last reload',
  usage,
  async run(argv) {
    const { values } = parseFlags('status', argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const runDir = locateRunDir({ config: values.config, runDir: values['run-dir'] });
    const status = (await controlRequest(runDir, 'status')) as StatusSnapshot;
    process.stdout.write(values.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status) + '\n');
    return 0;
  },
};
