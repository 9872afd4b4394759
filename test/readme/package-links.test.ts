// The README and docs/ ship in the package (package.json "files"), so every file they link to
// must ship too: a link into test/ or bench/ works on GitHub and is dead in
// node_modules/hitless (regression: "a complete Python worker is in
// test/fixtures/master/worker.py"). Links resolve from the linking file's folder, as in both.
// docs/BENCHMARKS.md is left out: its links to bench/results/ are the raw figures for readers
// of the repository, where the benchmarks run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { root } from '../helpers/master.js';

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
const shipped = (path: string): boolean =>
  path === 'package.json' || pkg.files.some((f) => path === f || path.startsWith(`${f}/`));

const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md') && f !== 'BENCHMARKS.md').map((f) => `docs/${f}`)];

test('every relative link of the README and docs/ points at a file the package carries', () => {
  const dead: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!;
      if (target === '' || /^[a-z]+:/i.test(target)) continue;
      const path = relative(root, join(root, dirname(page), target)).split(sep).join('/');
      if (!existsSync(join(root, path)) || !shipped(path)) dead.push(`${page}: ${m[1]!} (${path})`);
    }
  }
  assert.deepEqual(dead, []);
});
