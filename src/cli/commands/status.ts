/**
 * `hitless status`: what the master is running right now; `--watch` redraws it live.
 */
import type { Command } from '../command.js';
import { HitlessError } from '../../errors.js';
import { controlRequest } from '../../control/client.js';
import { formatDuration } from '../../config/duration.js';
import type { StatusSnapshot } from '../../core/types.js';
import { CLIENT_FLAGS, parseFlags, parseTimeoutFlag } from '../flags.js';
import { findRunDir } from '../../control/find.js';
import { formatStatus } from '../format.js';
import { onOutputClosed } from '../pipe.js';

/** Default redraw interval of --watch: the workers report every second. */
const WATCH_INTERVAL_MS = 1000;
const MIN_WATCH_INTERVAL_MS = 100;

const usage = `Usage: hitless status [--json] [--watch [--interval <dur>]] [--config <path>] [--run-dir <dir>]

Shows the master (pid, uptime, state), its app folder, the serving generation and release, the
listeners, every worker (generation.slot, pid, state, uptime, restarts, memory, CPU,
req/s, 5xx share, p50/p99 latency over the last 10 s, last STATUS= text), the traffic
per generation (and its totals by status class) and the last reload's result.

Flags:
  --json             print the raw status snapshot as JSON (with --watch: one line per interval)
  --watch            redraw every --interval until Ctrl-C (one status request per redraw)
  --interval <dur>   redraw interval of --watch (default 1s; only with --watch)
  --config <path>    config file of the app (default: ./hitless.json if it exists)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

export const command: Command = {
  name: 'status',
  usage,
  async run(argv) {
    const { values } = parseFlags('status', argv, {
      ...CLIENT_FLAGS, json: { type: 'boolean' }, watch: { type: 'boolean' }, interval: { type: 'string' },
    });
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const json = values.json === true;
    if (values.interval !== undefined && values.watch !== true) throw new HitlessError('ERR_USAGE', 'status: --interval goes with --watch (hitless status --watch --interval 2s)');
    const interval = parseTimeoutFlag(values.interval, '--interval') ?? WATCH_INTERVAL_MS;
    if (interval < MIN_WATCH_INTERVAL_MS) throw new HitlessError('ERR_USAGE', `--interval: ${values.interval} is too short; use ${MIN_WATCH_INTERVAL_MS}ms or more (workers report every second)`);
    const runDir = await findRunDir({ config: values.config, runDir: values['run-dir'] });
    if (values.watch) return watch(runDir, interval, json);
    const status = (await controlRequest(runDir, 'status')) as StatusSnapshot;
    process.stdout.write(json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status) + '\n');
    return 0;
  },
};

/**
 * Redraws the status until SIGINT/SIGTERM. On a terminal each frame overwrites the last in
 * place (cursor home, every line cleared to its end, the rest of the screen cleared), so
 * nothing flickers; elsewhere frames follow each other. Cheap: one status request and one
 * write per interval, idle in between.
 */
async function watch(runDir: string, intervalMs: number, json: boolean): Promise<number> {
  const out = process.stdout;
  const tty = out.isTTY === true && !json;
  let stopped = false;
  let wake: () => void = () => {};
  const onSignal = (): void => {
    stopped = true;
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `hitless status --watch | head -1`: the reader left, so stop.
  const offClosed = onOutputClosed(onSignal);
  if (tty) out.write('\x1b[?25l'); // hide the cursor while redrawing
  try {
    while (!stopped) {
      const status = (await controlRequest(runDir, 'status', {}, { timeoutMs: Math.max(5000, intervalMs) })) as StatusSnapshot;
      if (json) out.write(JSON.stringify(status) + '\n');
      else if (tty) {
        const footer = `every ${formatDuration(intervalMs)}, Ctrl-C to quit (${new Date().toLocaleTimeString()})`;
        out.write(`\x1b[H${`${formatStatus(status)}\n\n${footer}`.replace(/\n/g, '\x1b[K\n')}\x1b[K\x1b[J`);
      } else out.write(`${formatStatus(status)}\n\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    offClosed();
    if (tty) out.write('\x1b[?25h\n');
  }
  return 0;
}
