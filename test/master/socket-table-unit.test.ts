// The socket tables of /proc (src/master/socket-table.ts) from fake texts: what an EADDRINUSE says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inUseAdvice, tableRows } from '../../src/master/socket-table.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
/** One table line: local port `port` (hex in the text), state `st`, inode `inode`. */
const row = (i: number, port: number, st: string, inode: string): string =>
  `  ${i}: 0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 0100007F:E4D6 ${st} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

test('tableRows reads the port, the state and the inode of each line, the header skipped', () => {
  assert.deepEqual(tableRows(HEADER + row(0, 8080, '0A', '4025') + row(1, 43150, '06', '0')), [
    { port: 8080, listening: true, inode: '4025' },
    { port: 43150, listening: false, inode: '0' },
  ]);
});

test('EADDRINUSE with a listener on the port: another process listens there', () => {
  const tcp = HEADER + row(0, 43150, '0A', '77');
  assert.equal(inUseAdvice(43150, [tcp, HEADER], '32768\t60999\n'), 'another process listens there: stop it or choose another port');
});

test('EADDRINUSE with only connections on the port (regression: "another process listens there" when none did): says connections, names the ephemeral range and a port outside it', () => {
  const tcp = HEADER + row(0, 22, '0A', '5') + row(1, 43150, '01', '0') + row(2, 43150, '06', '0');
  const advice = inUseAdvice(43150, [tcp, HEADER], '32768\t60999\n');
  assert.match(advice, /^no process listens there, but connections use it as their local port/);
  assert.match(advice, /43150 is in this machine's ephemeral port range 32768–60999 \(\/proc\/sys\/net\/ipv4\/ip_local_port_range\)/);
  assert.match(advice, /choose a port outside it \(below 32768 or above 60999\)/);
});

test('EADDRINUSE on a port outside the ephemeral range, with no listener: connections, no range advice', () => {
  const advice = inUseAdvice(8080, [HEADER + row(0, 8080, '01', '0')], '32768\t60999\n');
  assert.match(advice, /^no process listens there, but connections use it/);
  assert.match(advice, /wait for those connections to end, or choose another port$/);
});

test('EADDRINUSE where the tables cannot be read (not Linux): the listener advice as before', () => {
  assert.equal(inUseAdvice(8080, ['', ''], ''), 'another process listens there: stop it or choose another port');
});
