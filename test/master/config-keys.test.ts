/**
 * The key table (src/config/keys.ts) is the one source of the configuration's keys: every
 * key of a loaded configuration shows in the reload diff when it changes (issue 21: the
 * diff had left out `handover`, `preload` and every `canary.*` key), the file schema has
 * no key the table lacks, docs/CONFIG.md's key table lists exactly its keys with their
 * flags, and `hitless start --help` shows every flag. The type system does the rest: the
 * table `satisfies` a record over every key of MasterConfig and of each section.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffConfig } from '../../src/config/changes.js';
import { CONFIG_KEYS, FLAG_FOR_KEY } from '../../src/config/keys.js';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import type { MasterConfig } from '../../src/config/types.js';
import { command as start } from '../../src/cli/commands/start.js';

/** Keys the table deliberately leaves out of the diff (with its reason). */
const OMITTED = Object.entries(CONFIG_KEYS).flatMap(([k, info]) => (typeof info.diff === 'object' ? [k] : []));

/** A configuration with every optional section set, loaded the way `hitless start` loads one. */
function fullConfig(t: { after(fn: () => void): void }): MasterConfig {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({
    command: ['node', 'server.js'], listen: ['127.0.0.1:8080', 'admin=unix:admin.sock?mode=0660'], workers: 2,
    env: { API_KEY: 'k' }, pidFile: 'master.pid', user: 'www', group: 'www',
    release: { keep: 3, prepare: ['npm', 'ci'] }, watch: { paths: ['dist'] },
    fetch: { url: 'https://example.com/app.tgz?sig=1', sha256: 'a'.repeat(64), headers: { Authorization: 'x' } },
    metrics: { listen: '127.0.0.1:9464' },
  }));
  return loadConfig({ cwd: dir, env: {} });
}

type Leaf = { path: string[]; value: unknown };

/** Every leaf of a configuration: scalars, arrays and unset (undefined/null) values, by key path. */
function leaves(v: unknown, path: string[] = []): Leaf[] {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
  }
  return [{ path, value: v }];
}

/** A different value of the same kind. */
function changed(v: unknown): unknown {
  if (typeof v === 'number') return v * 2 + 1;
  if (typeof v === 'string') return `${v}x`;
  if (typeof v === 'boolean') return !v;
  if (Array.isArray(v)) return [...v, v.at(-1) ?? 'x'];
  if (v === null) return 1000;
  return 'set';
}

function withLeaf(c: MasterConfig, path: string[], value: unknown): MasterConfig {
  const copy = structuredClone(c) as unknown as Record<string, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[path.at(-1) as string] = value;
  return copy as unknown as MasterConfig;
}

/** The leaves of `c` whose change the diff does not report (keys the table does not know). */
function missingFromDiff(c: MasterConfig): string[] {
  return leaves(c).filter(({ path, value }) => {
    if (OMITTED.includes(path[0] as string)) return false;
    const key = path.join('.');
    const changes = diffConfig(c, withLeaf(c, path, changed(value)));
    return !changes.some((ch) => ch.key === key || ch.key.startsWith(`${key}.`) || ch.key.startsWith(`${key} `));
  }).map(({ path }) => path.join('.'));
}

test('config keys: a change of any key of the configuration shows in the reload diff (handover, preload and canary.* included)', (t) => {
  const c = fullConfig(t);
  assert.deepEqual(missingFromDiff(c), []);
  const paths = leaves(c).map(({ path }) => path.join('.'));
  for (const k of ['env.API_KEY', 'watch.paths', 'fetch.url', 'fetch.headers.Authorization', 'metrics.listen', 'release.prepare', 'pidFile', 'user']) {
    assert.ok(paths.includes(k), `the fixture sets ${k}`);
  }
  const keys = diffConfig(c, { ...c, handover: false, preload: false, canary: { ...c.canary, warmup: 1000, then: 'rolling' } }).map((ch) => ch.key);
  assert.deepEqual(keys, ['canary.warmup', 'canary.then', 'handover', 'preload']);
});

test('config keys: the check bites — a key the table does not know (added to the configuration in this fixture) is reported missing', (t) => {
  const c = fullConfig(t);
  const extended = { ...c, extraKey: 5, canary: { ...c.canary, extraCanaryKey: true } } as unknown as MasterConfig;
  assert.deepEqual(missingFromDiff(extended), ['canary.extraCanaryKey', 'extraKey']);
});

test('config keys: hitless.json has no key the table lacks, and the table none the file cannot set except what the master derives', () => {
  const fileKeys = Object.keys(configSchema.shape).filter((k) => k !== '$schema' && k !== 'deploy');
  const tableKeys = Object.keys(CONFIG_KEYS);
  assert.deepEqual(fileKeys.filter((k) => !tableKeys.includes(k)), []);
  assert.deepEqual(tableKeys.filter((k) => !fileKeys.includes(k)), ['configPath', 'appDir', 'flagOverrides']);
});

test("config keys: docs/CONFIG.md's key table lists exactly the table's keys, each with its flag; `hitless start --help` shows every flag", (t) => {
  const doc = readFileSync(new URL('../../../docs/CONFIG.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Keys'), doc.indexOf('\n## ', doc.indexOf('## Keys') + 1));
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  const documented = new Map<string, string>();
  for (const row of rows) {
    const [keys = '', flag = ''] = row.split('|').slice(1).map((cell) => cell.trim());
    let last = '';
    for (const [, name] of keys.matchAll(/`([^`]+)`/g)) {
      // `deploy.ssh.user`, `.port`: a leading dot continues the previous key's section.
      const full = name!.startsWith('.') ? `${last.slice(0, last.lastIndexOf('.'))}${name}` : name!;
      documented.set(full, flag);
      last = full;
    }
  }
  // What the diff shows, one entry per key (listeners, env and header names are the user's).
  const c = fullConfig(t);
  const shown = new Set(leaves(c).map(({ path }) => path.slice(0, ['env', 'listen'].includes(path[0]!) ? 1 : path[0] === 'fetch' && path[1] === 'headers' ? 2 : path.length).join('.')));
  for (const k of [...shown]) if (OMITTED.includes(k) || k === 'configPath') shown.delete(k);
  const docKeys = [...documented.keys()].filter((k) => !k.startsWith('deploy.'));
  assert.deepEqual(docKeys.filter((k) => !shown.has(k)), [], 'documented keys the configuration does not have');
  assert.deepEqual([...shown].filter((k) => !documented.has(k)), [], 'keys of the configuration missing from docs/CONFIG.md');
  for (const [key, flag] of Object.entries(FLAG_FOR_KEY)) {
    if (!flag.startsWith('--')) continue;
    assert.ok(documented.get(key)?.includes(flag), `docs/CONFIG.md: ${key}'s flag is ${flag}`);
    assert.ok(start.usage.includes(`${flag} `) || start.usage.includes(`${flag}\n`), `hitless start --help lacks ${flag}`);
  }
});

test("config keys: docs/CONFIG.md says how a reload applies each key", () => {
  const doc = readFileSync(new URL('../../../docs/CONFIG.md', import.meta.url), 'utf8');
  const from = doc.indexOf('| key | how a reload applies it |');
  const rows = doc.slice(from, doc.indexOf('\n\n', from)).split('\n').slice(2);
  const named = new Set(rows.flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`([^`.]+)[^`]*`/g)].map((m) => m[1]!)));
  // configPath and appDir: "the config file itself"; flagOverrides is derived, not a setting.
  const keys = Object.keys(CONFIG_KEYS).filter((k) => k !== 'configPath' && k !== 'appDir' && k !== 'flagOverrides');
  assert.deepEqual(keys.filter((k) => !named.has(k)), []);
});
