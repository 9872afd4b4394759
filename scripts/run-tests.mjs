#!/usr/bin/env node
// Runs every compiled test file with node:test. Files are listed explicitly because
// `node --test <dir>` treats its arguments differently across Node 20 → 26 (directory
// walk vs. glob). Load tests saturate the machine's 2 cores, so files run one at a time
// unless HITLESS_TEST_CONCURRENCY says otherwise; tests inside a file may still overlap.
//
//   node scripts/run-tests.mjs                  all tests
//   node scripts/run-tests.mjs master reload    only files whose path contains a word
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testRoot = join(root, 'build', 'test');
if (!existsSync(testRoot)) {
  console.error('hitless tests: build/test is missing; run `npm run build` first (npm test does).');
  process.exit(2);
}

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'fixtures' ? [] : walk(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const files = walk(testRoot)
  .filter((f) => filters.length === 0 || filters.some((w) => relative(testRoot, f).includes(w)))
  .sort();
if (files.length === 0) {
  console.error(`hitless tests: no test file matches ${filters.join(' ')}`);
  process.exit(2);
}

const concurrency = process.env.HITLESS_TEST_CONCURRENCY ?? '1';
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
