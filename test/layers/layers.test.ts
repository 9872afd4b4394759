/**
 * The layering rules (.dependency-cruiser.cjs) hold on the compiled tree: no import cycle,
 * each folder imports only downward, the in-app library imports nothing outside itself.
 * A second check proves the rules bite: a throw-away tree with a cycle must fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cruiser = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const config = join(root, '.dependency-cruiser.cjs');

function cruise(cwd: string, dir: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [cruiser, dir, '--config', config, '--output-type', 'err'], { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('layers: the compiled source has no import cycle and imports only downward', () => {
  const { status, output } = cruise(root, 'build/src');
  assert.equal(status, 0, output);
});

test('layers: the check fails on a new cycle and on an upward import (the rules bite)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-layers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'build', 'src', 'core'), { recursive: true });
  mkdirSync(join(dir, 'build', 'src', 'cli'), { recursive: true });
  writeFileSync(join(dir, 'build', 'src', 'core', 'a.js'), "import './b.js';\nimport '../cli/main.js';\n");
  writeFileSync(join(dir, 'build', 'src', 'core', 'b.js'), "import './a.js';\n");
  writeFileSync(join(dir, 'build', 'src', 'cli', 'main.js'), 'export {};\n');
  const { status, output } = cruise(dir, 'build/src');
  assert.notEqual(status, 0);
  assert.match(output, /no-circular/);
  assert.match(output, /core-imports-downward/);
});
