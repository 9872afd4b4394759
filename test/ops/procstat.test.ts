import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createProcStatReader, readProcStats } from '../../src/master/procstat.js';

// comm with spaces and a ')' must not shift the fields.
const stat = (cpu: number) =>
  `1234 (my (odd) app) S 1 1234 1234 0 -1 4194560 100 0 0 0 ${cpu} 0 0 0 20 0 1 0 500 1000000 2000 0 0`;

test('procstat: rss from statm pages, CPU% as the delta since the previous reading', () => {
  let cpu = 100;
  let now = 10_000;
  const files: Record<string, () => string> = {
    '/proc/1234/stat': () => stat(cpu),
    '/proc/1234/statm': () => '5000 2500 300 10 0 400 0',
    '/proc/uptime': () => '15.00 20.00',
  };
  const read = (p: string): string => {
    const f = files[p];
    if (!f) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return f();
  };
  const reader = createProcStatReader({ read, children: () => [], now: () => now, pageSize: 4096, clockTicks: 100 });
  // First reading: 1 s of CPU over 10 s alive (started at tick 500 = 5 s, uptime 15 s).
  assert.deepEqual(reader([1234, 999]).get(1234), { rssBytes: 2500 * 4096, cpuPercent: 10 });
  assert.equal(reader([999]).size, 0);
  // Then 0.5 s of CPU over 2 s wall → 25 %.
  cpu += 50;
  now += 2000;
  reader([1234]); // pid 1234 was forgotten by the call above, so this is a first reading again
  cpu += 50;
  now += 2000;
  assert.equal(reader([1234]).get(1234)?.cpuPercent, 25);
});

test('procstat: a worker\'s figures sum its process tree (gunicorn serves from its arbiter\'s children), regression h19 F2', () => {
  let now = 10_000;
  const cpu = new Map([[10, 100], [11, 100], [12, 100], [13, 100]]);
  const read = (p: string): string => {
    if (p === '/proc/uptime') return '15.00 20.00';
    const m = /^\/proc\/(\d+)\/(stat|statm)$/.exec(p);
    const pid = Number(m?.[1]);
    if (!m || !cpu.has(pid)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return m[2] === 'statm' ? `5000 ${pid === 10 ? 1000 : 2000} 300 10 0 400 0` : stat(cpu.get(pid)!);
  };
  // 10 is the arbiter; 11 and 12 its workers; 13 a child of 12; 99 is gone.
  const tree: Record<number, number[]> = { 10: [11, 12, 99], 12: [13] };
  const reader = createProcStatReader({ read, children: (pid) => tree[pid] ?? [], now: () => now, pageSize: 4096, clockTicks: 100 });
  assert.deepEqual(reader([10]).get(10), { rssBytes: (1000 + 3 * 2000) * 4096, cpuPercent: 40 });
  // The children serve, the arbiter idles: 0.5 s of CPU each over 2 s.
  for (const pid of [11, 12, 13]) cpu.set(pid, cpu.get(pid)! + 50);
  now += 2000;
  assert.equal(reader([10]).get(10)?.cpuPercent, 75);
});

test('procstat: reads this process for real on Linux', { skip: !existsSync('/proc/self/stat') && 'no /proc (not Linux)' }, () => {
  const s = readProcStats([process.pid]).get(process.pid);
  assert.ok(s);
  assert.ok(s.rssBytes > 1024 * 1024, `rss ${s.rssBytes}`);
  assert.ok(s.cpuPercent >= 0);
  assert.equal(readProcStats([2 ** 22 + 7]).size, 0); // beyond pid_max: absent, no throw
});
