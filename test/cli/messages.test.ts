// Small wording slips of h16 F7, each checked where its message is made: a stray space
// before ")" (item 3) and a PATH listed with its folders twice (item 7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { delimiter } from 'node:path';
import { parseListen } from '../../src/config/listen.js';
import { commandWarnings } from '../../src/config/command-check.js';
import { openListeners } from '../../src/master/listeners.js';
import { isHitlessError } from '../../src/errors.js';

test('h16 F7.3: EADDRNOTAVAIL advice ends without a stray space before ")"', () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): documentation only, no machine has it.
  assert.throws(() => openListeners([parseListen('192.0.2.1:0', 0, '/')]), (err: unknown) => {
    assert.ok(isHitlessError(err, 'ERR_BIND'), String(err));
    assert.equal(err.message, 'cannot listen on 192.0.2.1:0: EADDRNOTAVAIL (this machine has no such address: use 127.0.0.1, 0.0.0.0, ::1 or ::)');
    return true;
  });
});

test('h16 F7.7: check\'s "not found on PATH" warning lists each PATH folder once (npx puts node_modules/.bin there twice)', () => {
  const path = ['/app/node_modules/.bin', '/usr/bin', '/app/node_modules/.bin', '', '/bin'].join(delimiter);
  const [warning] = commandWarnings({ command: ['hitless-no-such-program'], cwd: '/', env: {} }, path);
  assert.ok(warning?.includes(`on PATH (${['/app/node_modules/.bin', '/usr/bin', '/bin'].join(delimiter)})`), warning);
});
