import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DurationError, formatDuration, parseDuration } from '../../src/config/duration.js';
import { parseSize } from '../../src/config/size.js';
import { locateJsonError } from '../../src/config/json.js';
import { notWritable } from '../../src/config/output-file.js';

test('parseDuration: numbers are ms, strings take ms/s/m/h', () => {
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration('250'), 250);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('2s'), 2000);
  assert.equal(parseDuration('1.5m'), 90_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration(' 3 s '), 3000);
});

test('parseDuration: bad values throw with the accepted forms', () => {
  for (const v of [-1, Infinity, NaN, '2 days', '1.5', 's', '', null, true, {}]) {
    if (v === '1.5') continue; // "1.5" is 1.5 ms, rounded
    assert.throws(() => parseDuration(v), (e: Error) => e instanceof DurationError && e.message.includes('"500ms"'), String(v));
  }
});

test('formatDuration reads naturally', () => {
  assert.equal(formatDuration(850), '850 ms');
  assert.equal(formatDuration(1234), '1.2 s');
  assert.equal(formatDuration(2000), '2 s');
  assert.equal(formatDuration(185_000), '3 min 5 s');
  assert.equal(formatDuration(7_440_000), '2 h 4 min');
});

test('parseSize: bytes and k/M/G units (1024-based)', () => {
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize('500k'), 512_000);
  assert.equal(parseSize('10M'), 10 * 1024 ** 2);
  assert.equal(parseSize('512MiB'), 512 * 1024 ** 2);
  assert.equal(parseSize('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('100B'), 100);
  assert.equal(parseSize('lots'), undefined);
  assert.equal(parseSize(-1), undefined);
});

test('locateJsonError: points at the first mistake, undefined for valid JSON', () => {
  assert.equal(locateJsonError('{"a": [1, {"b": null}], "c": "\\u00e9"}'), undefined);
  assert.deepEqual(locateJsonError('{\n  "a": [1,]\n}'), { offset: 12, line: 2, column: 11, reason: 'unexpected "]"' });
  assert.equal(locateJsonError("{'a': 1}")?.column, 2);
  assert.equal(locateJsonError('{"a": 1} x')?.reason, 'unexpected "x"');
  assert.equal(locateJsonError('{"a": 01}')?.column, 8);
  assert.match(locateJsonError('{"a": 1')?.reason ?? '', /end of file/);
});

test('locateJsonError: a key given twice in one object (JSON.parse keeps the last without a word); the same key in two objects is fine', () => {
  assert.deepEqual(locateJsonError('{\n  "workers": 2,\n  "listen": ["8080"],\n  "workers": 8\n}'), {
    offset: 42, line: 4, column: 3, reason: '"workers" is given twice in this object (first at line 2); JSON keeps only the last one: remove one',
  });
  assert.equal(locateJsonError('{"logs": {"keep": 1}, "release": {"keep": 2}}'), undefined);
  assert.equal(locateJsonError('{"a\\u0062": 1, "ab": 2}')?.reason, '"ab" is given twice in this object (first at line 1); JSON keeps only the last one: remove one');
});

test('a folder on a read-only mount is said as such, not as a permission this user lacks (regression: "give it write access" for EROFS, which no permission fixes)', () => {
  assert.equal(notWritable({ code: 'EROFS' }, '/srv/logs', 'choose another folder'), '/srv/logs is on a read-only file system; remount it read-write, or choose another folder');
  assert.equal(notWritable({ code: 'EACCES' }, '/srv/logs', 'choose another folder'), 'this user cannot create files in /srv/logs; give it write access, or choose another folder');
});
