// The socket tables of /proc (src/master/socket-table.ts) from fake texts: what an EADDRINUSE
// says, and which held sockets listen; and the watch that finds a held socket a worker shut
// down (src/master/listener-watch.ts) with fake tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inUseAdvice, listeningAmong, tableRows } from '../../src/master/socket-table.js';
import { ListenerWatch, stoppedText } from '../../src/master/listener-watch.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
/** One table line: local port `port` (hex in the text), state `st`, inode `inode`. */
const row = (i: number, port: number, st: string, inode: string): string =>
  `  ${i}: 0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 0100007F:E4D6 ${st} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

test('tableRows reads the port, the state and the inode of each line, the header skipped', () => {
  assert.deepEqual(tableRows(HEADER + row(0, 8080, '0A', '4025') + row(1, 43150, '06', '0')), [
    { host: '127.0.0.1', port: 8080, listening: true, inode: '4025' },
    { host: '127.0.0.1', port: 43150, listening: false, inode: '0' },
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

test('listeningAmong stops reading once every wanted inode listens, and reads everything before calling one not listening', () => {
  const tcp = [HEADER + row(0, 8080, '0A', '11'), row(1, 8081, '0A', '12') + row(2, 5000, '01', '0'), row(3, 5001, '01', '0')];
  const read = (seen: string[]) => (path: string): string[] => {
    seen.push(path);
    return path.endsWith('tcp') ? tcp : [HEADER];
  };
  const seen: string[] = [];
  assert.deepEqual([...listeningAmong(new Set(['11']), read(seen))], [['11', 8080]]);
  assert.deepEqual(seen, ['/proc/net/tcp'], 'tcp6 is not read once all were found');
  const all: string[] = [];
  assert.deepEqual([...listeningAmong(new Set(['11', '99']), read(all))], [['11', 8080]]);
  assert.deepEqual(all, ['/proc/net/tcp', '/proc/net/tcp6']);
  // A line cut between two chunks is read whole.
  const line = row(0, 8080, '0A', '4242');
  assert.deepEqual([...listeningAmong(new Set(['4242']), () => [HEADER + line.slice(0, 20), line.slice(20)])], [['4242', 8080]]);
});

test('ListenerWatch: a socket that listened and stops is made to listen again and reported; one never seen listening, and unix sockets, are not', () => {
  const listening = new Set(['1', '2']);
  const relistened: number[][] = [];
  const watch = new ListenerWatch({
    sockets: () => [
      { name: 'http', address: '127.0.0.1:8080', fd: 10 },
      { name: 'admin', address: '127.0.0.1:9000', fd: 11 },
      { name: 'other', address: 'fd:3', fd: 3 },
      { name: 'sock', address: 'unix:/run/app.sock', fd: 12 },
    ],
    relisten: (fds) => {
      relistened.push(fds);
      for (const fd of fds) listening.add(String(fd - 9));
    },
    listening: (inodes) => new Map([...inodes].filter((i) => listening.has(i)).map((i) => [i, 8080])),
    inodeOf: (fd) => String(fd - 9), // 10 → '1', 11 → '2', 3 → '-6' (never listened: a datagram socket, say)
  });
  assert.deepEqual(watch.check(), []);
  listening.delete('1');
  assert.deepEqual(watch.check(), [{ name: 'http', address: '127.0.0.1:8080', fd: 10, relistened: true }]);
  assert.deepEqual(relistened, [[10]]);
  assert.deepEqual(watch.check(), [], 'it listens again');
});

test('ListenerWatch: a failed listen(2) is reported with its error, and the line says the master must be restarted', () => {
  let up = true;
  const watch = new ListenerWatch({
    sockets: () => [{ name: 'http', address: '127.0.0.1:8080', fd: 10 }],
    relisten: () => {
      throw new Error('EINVAL');
    },
    listening: (inodes) => new Map(up ? [...inodes].map((i) => [i, 8080]) : []),
    inodeOf: () => '1',
  });
  up = false;
  const [stopped] = watch.check();
  assert.deepEqual(stopped, { name: 'http', address: '127.0.0.1:8080', fd: 10, relistened: false, error: 'EINVAL' });
  assert.match(stoppedText(stopped!, 'after worker 1.0 (pid 42) exited'),
    /^listener "http" \(127\.0\.0\.1:8080\) had stopped listening, found after worker 1\.0 \(pid 42\) exited: .*could not make it listen again \(EINVAL\).*never call shutdown\(\)/);
});

test('ListenerWatch: a socket bound to port 0 that a worker shut down loses its port; listening on another one is reported as a failure naming both ports', () => {
  let port: number | undefined = 41000;
  const watch = new ListenerWatch({
    sockets: () => [{ name: 'http', address: '127.0.0.1:41000', fd: 10 }],
    relisten: () => void (port = 52345),
    listening: (inodes) => new Map(port === undefined ? [] : [...inodes].map((i) => [i, port!])),
    inodeOf: () => '1',
  });
  port = undefined;
  assert.deepEqual(watch.check(), [{
    name: 'http', address: '127.0.0.1:41000', fd: 10, relistened: false,
    error: 'the shutdown released its port 41000 (it was bound to port 0, an ephemeral port), and it listens on port 52345 now',
  }]);
});
