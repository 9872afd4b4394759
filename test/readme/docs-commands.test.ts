// Every command in the README's and docs' shell blocks is one a new user can run as
// written: hitless is installed in the project, not on PATH, so `npx hitless …` (or a real
// path), never a bare `hitless …` nor /usr/bin/hitless (issue 19).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../helpers/master.js';
import { COMMANDS } from '../../src/cli/catalog.js';

/** A synopsis line of docs/CLI.md: `hitless <command> …` (output lines there start with other words). */
const SYNOPSIS = new RegExp(`^(npx )?hitless (${Object.keys(COMMANDS).join('|')}|<command>|--help)\\b`);

/** [file, line number, line] of every line in ```sh / ```bash blocks (and CLI.md's synopsis blocks). */
function commandLines(file: string): [string, number, string][] {
  const out: [string, number, string][] = [];
  let lang: string | undefined;
  readFileSync(join(root, file), 'utf8').split('\n').forEach((line, i) => {
    if (line.startsWith('```')) {
      lang = lang === undefined ? line.slice(3).trim() : undefined;
      return;
    }
    if (lang === 'sh' || lang === 'bash' || (lang === '' && file === 'docs/CLI.md' && SYNOPSIS.test(line))) out.push([file, i + 1, line]);
  });
  return out;
}

const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

test('no bare `hitless` command and no /usr/bin/hitless in the README\'s and docs\' command blocks', () => {
  const bare = files.flatMap(commandLines).filter(([, , line]) => {
    const code = line.replace(/\s#.*$/, '');
    return /(^|[;&|(]\s*|"\s*|\bdo\s+)hitless\s/.test(code.replace(/npx (--no-install )?hitless/g, '')) || code.includes('/usr/bin/hitless');
  });
  assert.deepEqual(bare.map(([f, n, l]) => `${f}:${n}: ${l}`), []);
});

test('the example service files name real paths (node, and hitless installed in the app folder)', () => {
  for (const file of ['examples/systemd/myapp.service', 'examples/supervisord/myapp.conf']) {
    const text = readFileSync(join(root, file), 'utf8');
    assert.doesNotMatch(text, /\/usr\/bin\/hitless/, file);
    assert.match(text, /\/usr\/bin\/node \/srv\/myapp\/node_modules\/hitless\/build\/src\/cli\/main\.js start /, file);
  }
});
