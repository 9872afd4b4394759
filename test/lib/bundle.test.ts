/**
 * The in-app library bundled into one CommonJS file (esbuild --format=cjs, ncc, webpack: how
 * servers are often shipped) must load: such bundlers replace `import.meta` with `{}`, so no
 * module the package's entry points load at run time may read it. Checked on the compiled
 * files those entry points reach through their static imports (the bundler's view).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Every compiled module `entry` reaches through relative static imports and re-exports. */
function reached(entry: string): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    const text = readFileSync(file, 'utf8');
    seen.set(file, text);
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) visit(resolve(dirname(file), m[1]!));
    for (const m of text.matchAll(/^import\s+'(\.[^']+)'/gm)) visit(resolve(dirname(file), m[1]!));
  };
  visit(entry);
  return seen;
}

test('the library and hitless/ws read no import.meta, which a CommonJS bundle replaces with {} (regression: createRequire(import.meta.url) crashed a bundled app at load)', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { default?: string } | string> };
  const entries = Object.values(pkg.exports).flatMap((e) => (typeof e === 'object' && e.default ? [join(root, e.default)] : []));
  assert.deepEqual(entries.map((e) => e.slice(root.length)), ['build/src/index.js', 'build/src/ws/index.js']);
  for (const entry of entries) {
    const modules = reached(entry);
    assert.ok(modules.size > 10, `${entry} reaches ${modules.size} modules`);
    const readers = [...modules].filter(([, text]) => /\bimport\.meta\b/.test(text.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, ''))).map(([file]) => file.slice(root.length));
    assert.deepEqual(readers, [], `modules of ${entry} that read import.meta`);
  }
});
