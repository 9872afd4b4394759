/**
 * An address systemd's own socket holds (src/master/systemd-socket.ts), from fake /proc
 * texts: each inherited fd's bound address by its inode, the match with a listen entry,
 * and the ERR_BIND that names systemd's socket instead of "another process". The real
 * socket at fd 3 is in test/ops/socket-activation.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HitlessError } from '../../src/errors.js';
import { parseListen } from '../../src/config/listen.js';
import { hexIp } from '../../src/master/socket-table.js';
import { localAddress, nameSystemdSocket, systemdSocketAddress, takes, type LocalAddress, type ProcReader } from '../../src/master/systemd-socket.js';
import { inheritedListeners, ListenerSet } from '../../src/master/listeners.js';
import { formatStatus } from '../../src/cli/format.js';
import type { StatusSnapshot } from '../../src/core/types.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const tcpRow = (local: string, st: string, inode: string): string =>
  `   0: ${local} 00000000:0000 ${st} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

function fakeProc(links: Record<number, string>, tables: Record<string, string>): ProcReader {
  return {
    readlink: (path) => {
      const link = links[Number(/\/fd\/(\d+)$/.exec(path)?.[1])];
      if (link === undefined) throw new Error('ENOENT');
      return link;
    },
    read: (path) => tables[path] ?? '',
  };
}

test('hexIp: the tables\' hex addresses, word by word in the machine\'s byte order', () => {
  assert.equal(hexIp('0100007F', true), '127.0.0.1');
  assert.equal(hexIp('7F000001', false), '127.0.0.1');
  assert.equal(hexIp('00000000000000000000000001000000', true), '::1');
  assert.equal(hexIp('00000000000000000000000000000000', true), '::');
  assert.equal(hexIp('B80D0120000000000000000001000000', true), '2001:db8::1');
});

test('localAddress: a fd\'s socket inode found listening in /proc/net/tcp, tcp6 or unix; undefined for what is not a socket', () => {
  const proc = fakeProc({ 3: 'socket:[111]', 4: 'socket:[222]', 5: 'socket:[333]', 6: '/dev/null' }, {
    '/proc/net/tcp': HEADER + tcpRow('0100007F:1F90', '01', '111') + tcpRow('0100007F:1F90', '0A', '111'),
    '/proc/net/tcp6': HEADER + tcpRow('00000000000000000000000000000000:0050', '0A', '222'),
    '/proc/net/unix': 'Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 333 /run/myapp.sock\n',
  });
  assert.deepEqual(localAddress(3, proc), { kind: 'tcp', host: '127.0.0.1', port: 8080 });
  assert.deepEqual(localAddress(4, proc), { kind: 'tcp', host: '::', port: 80 });
  assert.deepEqual(localAddress(5, proc), { kind: 'unix', path: '/run/myapp.sock' });
  assert.equal(localAddress(6, proc), undefined);
  assert.equal(localAddress(7, proc), undefined);
});

test('systemdSocketAddress: where systemd\'s socket is bound, as status shows an address; undefined when /proc cannot tell', () => {
  const proc = fakeProc({ 3: 'socket:[111]', 4: 'socket:[222]', 5: 'socket:[333]' }, {
    '/proc/net/tcp': HEADER + tcpRow('0100007F:1F90', '0A', '111'),
    '/proc/net/tcp6': HEADER + tcpRow('00000000000000000000000000000000:0050', '0A', '222'),
    '/proc/net/unix': 'Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 333 /run/myapp.sock\n',
  });
  assert.equal(systemdSocketAddress(3, proc), '127.0.0.1:8080');
  assert.equal(systemdSocketAddress(4, proc), '[::]:80');
  assert.equal(systemdSocketAddress(5, proc), 'unix:/run/myapp.sock');
  assert.equal(systemdSocketAddress(6, proc), undefined);
});

test('hitless status shows systemd\'s socket with the address it is bound to (regression: "http fd:3 (fd 3, from systemd)"), or only "(fd N, from systemd)" when unknown', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_FDS: '2', LISTEN_PID: '77', LISTEN_FDNAMES: 'http:admin' };
  const held = inheritedListeners(env, 77, (fd) => (fd === 3 ? '127.0.0.1:29080' : undefined));
  const listeners = new ListenerSet(held).status();
  assert.deepEqual(listeners, [
    { name: 'http', address: 'fd:3', fd: 3, inherited: true, boundTo: '127.0.0.1:29080' },
    { name: 'admin', address: 'fd:4', fd: 4, inherited: true },
  ]);
  const status = { pid: 1, uptimeMs: 1000, state: 'running', version: 't', generation: 1, release: undefined, workers: [], lastReload: undefined, reloadQueued: false, listeners } as unknown as StatusSnapshot;
  const lines = formatStatus(status).split('\n');
  assert.ok(lines.includes('listeners   http 127.0.0.1:29080 (fd 3, from systemd)'), lines.join('\n'));
  assert.ok(lines.includes('            admin (fd 4, from systemd)'), lines.join('\n'));
});

test('takes: the same address, a wildcard covering it, the same unix path; never another port', () => {
  const tcp = (host: string, port: number): LocalAddress => ({ kind: 'tcp', host, port });
  assert.equal(takes(parseListen('127.0.0.1:8080', 0, '/'), tcp('127.0.0.1', 8080)), true);
  assert.equal(takes(parseListen('8080', 0, '/'), tcp('127.0.0.1', 8080)), true);
  assert.equal(takes(parseListen('127.0.0.1:8080', 0, '/'), tcp('::', 8080)), true);
  assert.equal(takes(parseListen('[0:0::1]:8080', 0, '/'), tcp('::1', 8080)), true);
  assert.equal(takes(parseListen('127.0.0.1:8081', 0, '/'), tcp('127.0.0.1', 8080)), false);
  assert.equal(takes(parseListen('unix:/run/a.sock', 0, '/'), { kind: 'unix', path: '/run/a.sock' }), true);
  assert.equal(takes(parseListen('unix:/run/a.sock', 0, '/'), tcp('127.0.0.1', 8080)), false);
});

const inUse = (source: string): HitlessError =>
  new HitlessError('ERR_BIND', `cannot listen on ${source}: EADDRINUSE (another process listens there: stop it or choose another port)`, { details: { address: source, errno: 'EADDRINUSE' } });

test('nameSystemdSocket: an EADDRINUSE on the address of systemd\'s socket names it and the three fixes; any other error is left as it is', () => {
  const specs = [parseListen('127.0.0.1:8080', 0, '/'), parseListen('admin=127.0.0.1:9000', 1, '/')];
  const at = (fd: number): LocalAddress | undefined => (fd === 3 ? { kind: 'tcp', host: '127.0.0.1', port: 8080 } : undefined);
  const named = nameSystemdSocket(inUse('127.0.0.1:8080'), specs, [{ name: 'myapp.socket', fd: 3 }], at) as HitlessError;
  assert.equal(named.code, 'ERR_BIND');
  assert.equal(named.message, 'cannot listen on 127.0.0.1:8080: that address is already systemd\'s socket "myapp.socket" (fd 3), and this entry is named "http", so it does not stand for it; ' +
    'name the listen entry "myapp.socket=127.0.0.1:8080" (then it stands for that socket), or set FileDescriptorName=http in the .socket unit (without it systemd names the socket after the unit), or remove the entry');
  assert.deepEqual(named.details, { address: '127.0.0.1:8080', errno: 'EADDRINUSE', systemdSocket: 'myapp.socket', fd: 3 });
  // A named entry keeps its address in the advice; another address, or no systemd socket there, stays as it was.
  const api = [parseListen('api=127.0.0.1:8080', 0, '/')];
  assert.match((nameSystemdSocket(inUse('api=127.0.0.1:8080'), api, [{ name: 'myapp.socket', fd: 3 }], at) as Error).message, /name the listen entry "myapp\.socket=127\.0\.0\.1:8080".*FileDescriptorName=api/);
  const other = inUse('admin=127.0.0.1:9000');
  assert.equal(nameSystemdSocket(other, specs, [{ name: 'myapp.socket', fd: 3 }], at), other);
  const denied = new HitlessError('ERR_BIND', 'cannot listen on 127.0.0.1:8080: EACCES', { details: { address: '127.0.0.1:8080', errno: 'EACCES' } });
  assert.equal(nameSystemdSocket(denied, specs, [{ name: 'myapp.socket', fd: 3 }], at), denied);
  const noSystemd = inUse('127.0.0.1:8080');
  assert.equal(nameSystemdSocket(noSystemd, specs, [], at), noSystemd);
  // A socket name a listen entry cannot take (systemd allows more): only the unit's fix.
  const odd = nameSystemdSocket(inUse('127.0.0.1:8080'), specs, [{ name: 'my app', fd: 3 }], at) as Error;
  assert.match(odd.message, /systemd's socket "my app" \(fd 3\).*; set FileDescriptorName=http in the \.socket unit .*, or remove the entry$/);
  assert.ok(!odd.message.includes('name the listen entry'));
});
