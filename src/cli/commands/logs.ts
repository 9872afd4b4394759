/**
 * `hitless logs [-f] [-n N]`: shows the workers' output written by `logs.mode: "file"`
 * (the last N lines across rotated files, then optionally follows new lines).
 */
import { parseArgs } from 'node:util';
import { HitlessError } from '../../errors.js';
import { loadConfig } from '../../config/load.js';
import { followLog, readLastLines } from '../../ops/logtail.js';
import type { Command } from '../command.js';

/** Lines shown when -n is not given (like tail). */
export const DEFAULT_LOG_LINES = 10;

const usage = `Usage: hitless logs [-f] [-n N] [--config FILE] [--dir DIR]

Shows the workers' output, written to rotated files when hitless.json has
  "logs": { "mode": "file", "dir": "logs", "maxSize": "10MB", "keep": 5, "tag": true }

  -n, --lines N     show the last N lines (default ${DEFAULT_LOG_LINES}; 0 shows none)
  -f, --follow      keep printing new lines, across rotations, until Ctrl-C
  -c, --config FILE the app's config file (default: ./hitless.json)
      --dir DIR     read this log folder instead of the config's logs.dir

With "logs.mode": "inherit" (the default) worker output goes to the master's own
stdout/stderr: read it where the master runs (journalctl -u app, docker logs, …).`;

function parse(argv: string[]): { follow: boolean; lines: number; config: string | undefined; dir: string | undefined } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        follow: { type: 'boolean', short: 'f' },
        lines: { type: 'string', short: 'n' },
        config: { type: 'string', short: 'c' },
        dir: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new HitlessError('ERR_USAGE', `logs: ${(err as Error).message}; see hitless logs --help`);
  }
  const linesText = values.lines ?? String(DEFAULT_LOG_LINES);
  if (!/^\d+$/.test(linesText)) {
    throw new HitlessError('ERR_USAGE', `logs: -n ${JSON.stringify(linesText)} is not a whole number; write for example -n 100`);
  }
  return { follow: values.follow ?? false, lines: Number(linesText), config: values.config, dir: values.dir };
}

export const command: Command = {
  name: 'logs',
  summary: 'Show worker output written to log files (-f follows, -n N lines)',
  usage,
  async run(argv) {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const opts = parse(argv);
    let dir = opts.dir;
    let keep = 100; // with --dir the retention is unknown: look for many rotated files
    if (dir === undefined) {
      const config = loadConfig({ flags: { config: opts.config } });
      if (config.logs.mode !== 'file') {
        throw new HitlessError('ERR_USAGE',
          `logs: worker output is not written to files (logs.mode is "${config.logs.mode}" in ${config.configPath ?? 'the defaults'}); ` +
          'it goes to the master\'s stdout/stderr. Set "logs": { "mode": "file" } to use hitless logs');
      }
      dir = config.logs.dir;
      keep = config.logs.keep;
    }
    if (!opts.follow) {
      for (const line of await readLastLines(dir, keep, opts.lines)) process.stdout.write(line + '\n');
      return 0;
    }

    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await followLog(dir, (line) => process.stdout.write(line + '\n'), ac.signal, { backlog: opts.lines, keep });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return 0;
  },
};
