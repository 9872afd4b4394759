import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { configJsonSchema } from '../../src/config/schema.js';

// docs/hitless.schema.json is generated from the zod schema (editors validate hitless.json
// with it). Regenerate with: HITLESS_UPDATE_SCHEMA=1 node scripts/run-tests.mjs config-schema
const file = new URL('../../../docs/hitless.schema.json', import.meta.url);

test('docs/hitless.schema.json matches the config schema', () => {
  const expected = JSON.stringify(configJsonSchema(), null, 2) + '\n';
  if (process.env.HITLESS_UPDATE_SCHEMA === '1') writeFileSync(file, expected);
  assert.equal(readFileSync(file, 'utf8'), expected,
    'docs/hitless.schema.json is stale: run HITLESS_UPDATE_SCHEMA=1 node scripts/run-tests.mjs config-schema');
});

test('the JSON Schema forbids unknown keys and documents defaults', () => {
  const schema = configJsonSchema() as { additionalProperties: boolean; properties: Record<string, { default?: unknown }> };
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.properties.readyTimeout?.default, 30_000);
  assert.equal(schema.properties.workers?.default, 1);
});
