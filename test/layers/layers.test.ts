/**
 * The layering rules (.dependency-cruiser.cjs) hold: no import cycle, each folder imports
 * only downward, the in-app library imports nothing outside itself. Checked twice: on the
 * compiled tree (what runs), and on the graph the TypeScript compiler resolves, where
 * type-only imports still exist (type-graph.ts; issue 21). Self-tests prove the rules bite:
 * throw-away trees with a runtime cycle, and with a type-only one, must fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilerGraph, writeStubTree } from './type-graph.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cruiser = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const config = join(root, '.dependency-cruiser.cjs');

function cruise(cwd: string, ...dirs: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [cruiser, ...dirs, '--config', config, '--output-type', 'err'], { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('layers: the compiled source and benchmarks have no import cycle and import only downward', () => {
  const { status, output } = cruise(root, 'build/src', 'build/bench');
  assert.equal(status, 0, output);
});

test('layers: with type-only imports too (the graph tsc resolves), no cycle in src/ and bench/ and no upward import', (t) => {
  // Under build/ so that packages resolve from the project's node_modules.
  const out = mkdtempSync(join(root, 'build', '.type-graph-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const graph = compilerGraph(root, ['src', 'bench'], out);
  assert.ok(graph.edges.some((e) => e.from.endsWith(join('src', 'core', 'supervisor.ts')) && e.to !== undefined), 'the compiler listed the core imports');
  assert.ok(writeStubTree(root, graph, out) > 100);
  const { status, output } = cruise(out, 'build/src', 'build/bench');
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

test('layers: the check fails on a cycle and an upward import made of `import type` alone (invisible in the compiled tree)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-layers-types-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'src', 'core'), { recursive: true });
  mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, types: [], verbatimModuleSyntax: true },
  }));
  writeFileSync(join(dir, 'src', 'core', 'a.ts'), "import type { B } from './b.js';\nimport type { Cli } from '../cli/main.js';\nexport interface A { b?: B; cli?: Cli }\n");
  writeFileSync(join(dir, 'src', 'core', 'b.ts'), "import type { A } from './a.js';\nexport interface B { a?: A }\n");
  writeFileSync(join(dir, 'src', 'cli', 'main.ts'), 'export interface Cli { name: string }\n');
  const graph = compilerGraph(dir, ['src'], dir);
  assert.equal(writeStubTree(dir, graph, join(dir, 'graph')), 3);
  const { status, output } = cruise(join(dir, 'graph'), 'build/src');
  assert.notEqual(status, 0);
  assert.match(output, /no-circular/);
  assert.match(output, /core-imports-downward/);
});
