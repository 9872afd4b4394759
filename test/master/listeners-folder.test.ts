// The folder of a unix-socket listener: created when missing (the documented example
// `admin=unix:run/admin.sock` in a fresh app folder), and named when it cannot be.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseListen } from '../../src/config/listen.js';
import { openListeners } from '../../src/master/listeners.js';
import { isHitlessError } from '../../src/errors.js';

test('a unix socket in a folder that does not exist yet: the folder is created and the socket listens', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockdir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const set = openListeners([parseListen('admin=unix:run/admin.sock?mode=0660', 0, dir)]);
  try {
    const path = join(dir, 'run', 'admin.sock');
    assert.ok(statSync(path).isSocket());
    assert.equal(statSync(path).mode & 0o777, 0o660);
  } finally {
    set.close();
  }
});

test('a unix socket whose folder is a file: ERR_BIND names it and the fix, not ports', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockdir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'run'), 'a file where the folder should be');
  assert.throws(() => openListeners([parseListen('admin=unix:run/admin.sock', 0, dir)]), (err: unknown) => {
    assert.ok(isHitlessError(err, 'ERR_BIND'), String(err));
    assert.equal(err.message, `cannot listen on admin=unix:run/admin.sock: ${join(dir, 'run')} is not a folder: a file is in the way ` +
      '(remove it, or choose another socket path)');
    return true;
  });
  assert.equal(existsSync(join(dir, 'run', 'admin.sock')), false);
});
