/**
 * `hitless releases [--json]`: the installed releases, oldest first: id, creation time,
 * size, which one is current, and the last outcome of switching to it.
 */
import type { Command } from '../command.js';
import { treeSize } from '../../release/hash.js';
import { readCurrent, releaseDir } from '../../release/layout.js';
import { releasesByAge } from '../../release/prune.js';
import { readState, unfinished, type ReleaseRecord } from '../../release/state.js';
import { releaseContext } from '../../release/context.js';
import { CLIENT_FLAGS, parseFlags } from '../flags.js';
import { renderTable } from '../../text/table.js';

const usage = `Usage: hitless releases [--json] [--config <path>]

Lists the releases under releases/ of the app folder, oldest first: id, creation time
(UTC), size on disk, which one \`current\` points at (*), and the last outcome of switching
to it (live, rolled-back, switched while no master ran; preparing, or interrupted when the
run that was preparing it was killed: the next release operation removes it).

Flags:
  --json             print the list as JSON
  --config <path>    config file of the app (default: ./hitless.json, else the working directory)
  -h, --help         show this help`;

export interface ReleaseRow {
  id: string;
  createdAt: number;
  bytes: number;
  current: boolean;
  outcome: string | undefined;
  source: string | undefined;
}

/** The LAST OUTCOME column: a release whose prepare is running or was cut short has none to show. */
function describeOutcome(rec: ReleaseRecord | undefined): string | undefined {
  const why = unfinished(rec);
  if (why === 'interrupted') return 'interrupted (prepare did not finish)';
  if (why === 'preparing') return 'preparing';
  if (!rec?.outcome) return undefined;
  return `${rec.outcome.result}${rec.outcome.code && !rec.outcome.ok ? ` (${rec.outcome.code})` : ''}`;
}

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export const command: Command = {
  name: 'releases',
  usage,
  async run(argv) {
    const { values } = parseFlags('releases', argv, { config: CLIENT_FLAGS.config, help: CLIENT_FLAGS.help, json: { type: 'boolean' } });
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const { appDir } = releaseContext({ config: values.config });
    const state = await readState(appDir);
    const current = await readCurrent(appDir).catch(() => undefined);
    const rows: ReleaseRow[] = await Promise.all((await releasesByAge(appDir, state)).map(async ({ id, at }) => {
      const rec = state.releases[id];
      return {
        id, createdAt: at, bytes: await treeSize(releaseDir(appDir, id)), current: id === current,
        outcome: describeOutcome(rec),
        source: rec?.source,
      };
    }));
    if (values.json) {
      process.stdout.write(JSON.stringify({ appDir, current, releases: rows }, null, 2) + '\n');
      return 0;
    }
    if (rows.length === 0) {
      process.stdout.write(`no releases in ${appDir}/releases; \`hitless release <dir|archive.tgz>\` makes one\n`);
      return 0;
    }
    const table = [['', 'ID', 'CREATED (UTC)', 'SIZE', 'LAST OUTCOME']];
    for (const r of rows) {
      table.push([r.current ? '*' : '', r.id, new Date(r.createdAt).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ''), humanBytes(r.bytes), r.outcome ?? '-']);
    }
    process.stdout.write(renderTable(table) + '\n');
    return 0;
  },
};
