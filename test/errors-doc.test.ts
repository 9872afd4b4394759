import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codes } from '../src/errors.js';

// Guards the promise in src/errors.ts: every code is documented in docs/ERRORS.md, and the
// doc lists no code that does not exist (fastify keeps the same check for FST_ERR_*).
const doc = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8');
const sections = new Map<string, string>();
for (const part of doc.split(/^### /m).slice(1)) {
  const [heading = '', ...body] = part.split('\n');
  sections.set(heading.trim(), body.join('\n').split(/^## /m)[0]!.trim());
}

test('every error code in src/errors.ts has a section in docs/ERRORS.md', () => {
  const missing = Object.keys(codes).filter((code) => !sections.has(code));
  assert.deepEqual(missing, [], `add a "### <code>" section to docs/ERRORS.md for: ${missing.join(', ')}`);
});

test('docs/ERRORS.md documents no code that src/errors.ts lacks', () => {
  const extra = [...sections.keys()].filter((code) => !Object.hasOwn(codes, code));
  assert.deepEqual(extra, [], `remove or add to src/errors.ts: ${extra.join(', ')}`);
});

test('every documented code says something', () => {
  for (const [code, body] of sections) assert.ok(body.length > 20, `${code} has an empty section`);
});
