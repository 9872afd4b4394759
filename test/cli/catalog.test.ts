// The command summaries have one source (src/cli/catalog.ts): every command there has a
// module, `hitless --help` prints them, docs/CLI.md has a row for each (issue 21 item 5:
// they were written twice and two had drifted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/catalog.js';
import type { Command } from '../../src/cli/command.js';
import { root, runCli } from '../helpers/master.js';

test('every command in the catalog has its module, and every module is in the catalog', async () => {
  const modules = readdirSync(join(root, 'build', 'src', 'cli', 'commands')).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
  assert.deepEqual(modules, Object.keys(COMMANDS).sort());
  for (const name of modules) {
    const { command } = (await import(`../../src/cli/commands/${name}.js`)) as { command: Command & { summary?: unknown } };
    assert.equal(command.name, name);
    assert.equal(command.summary, undefined, `${name}: the summary lives in catalog.ts only`);
    assert.match(command.usage, new RegExp(`^Usage: hitless ${name}\\b`));
    // h16 F7.8: `hitless logs --help` had no such line.
    assert.match(command.usage, /^ {2}-h, --help +show this help$/m, `${name}: its help lists -h, --help`);
  }
});

test('hitless --help prints each summary from the catalog, once', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  for (const [name, summary] of Object.entries(COMMANDS)) {
    assert.match(r.stdout, new RegExp(`^  ${name} +${summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  }
});

test('docs/CLI.md: a row in the command table and a section for every command', () => {
  const doc = readFileSync(join(root, 'docs', 'CLI.md'), 'utf8');
  for (const name of Object.keys(COMMANDS)) {
    assert.ok(new RegExp(`^\\| \`(?:[a-z]+\`, \`)*${name}\``, 'm').test(doc), `no table row for ${name}`);
    assert.ok(doc.includes(`hitless ${name}`), `docs/CLI.md never shows hitless ${name}`);
  }
});
