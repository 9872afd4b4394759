import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolvePrivileges } from '../../src/ops/privileges.js';
import { isHitlessError } from '../../src/errors.js';

const passwd = [
  'root:x:0:0:root:/root:/bin/bash',
  '# a comment',
  'www:x:33:33:www-data:/var/www:/usr/sbin/nologin',
  'app:x:1001:1001:App,,,:/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
].join('\n');
const group = ['root:x:0:', 'www:x:33:', 'app:x:1001:', 'ssl-cert:x:110:app,www', 'nogroup:x:65534:'].join('\n');
const asRoot = { passwd: () => passwd, group: () => group, getent: () => undefined, euid: 0, egid: 0 };

test('resolvePrivileges: nothing configured → undefined', () => {
  assert.equal(resolvePrivileges(undefined, undefined, asRoot), undefined);
  assert.equal(resolvePrivileges('', '', asRoot), undefined);
});

test('resolvePrivileges: a user name gives its uid, primary gid, groups and home', () => {
  assert.deepEqual(resolvePrivileges('app', undefined, asRoot),
    { uid: 1001, gid: 1001, groups: [1001, 110], home: '/home/app', name: 'app' });
});

test('resolvePrivileges: group overrides the primary group, by name or number', () => {
  assert.equal(resolvePrivileges('app', 'www', asRoot)?.gid, 33);
  assert.equal(resolvePrivileges('app', '4242', asRoot)?.gid, 4242);
});

test('resolvePrivileges: numeric uid, known or not', () => {
  assert.equal(resolvePrivileges('65534', undefined, asRoot)?.name, 'nobody');
  assert.deepEqual(resolvePrivileges('5000', undefined, asRoot), { uid: 5000, gid: 5000, groups: [5000], home: '/', name: '5000' });
});

test('resolvePrivileges: falls back to getent for users outside /etc/passwd (NSS)', () => {
  const p = resolvePrivileges('ldapuser', 'ldapgroup', {
    ...asRoot,
    getent: (db, key) => db === 'passwd' && key === 'ldapuser' ? 'ldapuser:*:7000:7000:L:/home/ldapuser:/bin/sh\n'
      : db === 'group' && key === 'ldapgroup' ? 'ldapgroup:*:7100:\n' : undefined,
  });
  assert.deepEqual(p, { uid: 7000, gid: 7100, groups: [7100], home: '/home/ldapuser', name: 'ldapuser' });
});

test('resolvePrivileges: unknown user or group → ERR_PRIVILEGE naming the key', () => {
  assert.throws(() => resolvePrivileges('ghost', undefined, asRoot),
    (e) => isHitlessError(e, 'ERR_PRIVILEGE') && /"user".*ghost/.test(e.message));
  assert.throws(() => resolvePrivileges('app', 'ghosts', asRoot),
    (e) => isHitlessError(e, 'ERR_PRIVILEGE') && /"group".*ghosts/.test(e.message));
});

test('resolvePrivileges: not root and a different user → ERR_PRIVILEGE (never silently run as the master)', () => {
  const asApp = { ...asRoot, euid: 1001, egid: 1001 };
  assert.throws(() => resolvePrivileges('www', undefined, asApp),
    (e) => isHitlessError(e, 'ERR_PRIVILEGE') && /not root/.test(e.message));
  assert.throws(() => resolvePrivileges(undefined, 'www', asApp), (e) => isHitlessError(e, 'ERR_PRIVILEGE'));
  // Asking for the identity the master already has is fine.
  assert.equal(resolvePrivileges('app', undefined, asApp)?.uid, 1001);
});

test('resolvePrivileges: the real account database resolves root', () => {
  const p = resolvePrivileges('root', undefined, { euid: 0, egid: 0 });
  assert.equal(p?.uid, 0);
  assert.equal(p?.gid, 0);
});
