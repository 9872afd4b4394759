// Who holds an address no running master claims (h21 F8), from a fake /proc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describePortHolder, findPortHolder, type ProcView } from '../../src/master/port-holder.js';
import type { ListenerSpec } from '../../src/config/types.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
// 127.0.0.1:8080 listening (inode 4025), and a connection from local port 8081 (inode 4026).
const TCP = HEADER +
  '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4025 1 0 100 0 0 10 0\n' +
  '   1: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4026 1 0 100 0 0 10 0\n';
const UNIX = 'Num       RefCount Protocol Flags    Type St Inode Path\n' +
  '0000000000000000: 00000002 00000000 00010000 0001 01 5001 /srv/app/run/app.sock\n';

function view(procs: Record<number, { fds: string[]; env?: Record<string, string>; ppid: number; cmd: string[]; cwd?: string }>): ProcView {
  return {
    tcpTables: [TCP, HEADER],
    unixTable: UNIX,
    pids: () => Object.keys(procs).map(Number),
    fdLinks: (pid) => procs[pid]?.fds ?? [],
    environ: (pid) => Object.entries(procs[pid]?.env ?? {}).map(([k, v]) => `${k}=${v}`).join('\0'),
    stat: (pid) => `${pid} (node) S ${procs[pid]?.ppid ?? 0} ${pid} ${pid} 0 -1`,
    cmdline: (pid) => procs[pid]?.cmd,
    cwd: (pid) => procs[pid]?.cwd,
  };
}

const tcp = (host: string, port: number): ListenerSpec => ({ kind: 'tcp', host, port, name: 'http', source: `${host}:${port}` } as ListenerSpec);
const workerEnv = { HITLESS_MASTER_PID: '100', HITLESS_GENERATION: '3' };

test('findPortHolder: the processes whose fds hold the listening socket; a worker whose master is not a parent of any of them is left over', () => {
  const procs = {
    301: { fds: ['/dev/null', 'socket:[4025]'], env: workerEnv, ppid: 1, cmd: ['node', 'raw.js'], cwd: '/srv/app' },
    300: { fds: ['socket:[4025]'], env: workerEnv, ppid: 1, cmd: ['node', 'raw.js'], cwd: '/srv/app' },
    500: { fds: ['socket:[4026]'], ppid: 1, cmd: ['curl'] },
  };
  const found = findPortHolder(tcp('127.0.0.1', 8080), view(procs));
  assert.deepEqual(found, { pids: [300, 301], command: 'node raw.js', worker: { masterPid: 100, generation: '3', orphan: true, cwd: '/srv/app' } });
  assert.equal(describePortHolder(found!), '(held by pids 300, 301, `node raw.js`, workers of generation 3 left in /srv/app by hitless master pid 100, which is gone: ' +
    'a worker that ignores its stop signal outlives a killed master, as that signal is also what it gets when the master dies; they still serve the old version: ' +
    'kill them with `kill -KILL 300 301` and start again)');
  // The wildcard holds every host's port; a port only used by a connection is nobody's listener.
  assert.deepEqual(findPortHolder(tcp('0.0.0.0', 8080), view(procs))?.pids, [300, 301]);
  assert.equal(findPortHolder(tcp('127.0.0.1', 8081), view(procs)), undefined);
});

test('findPortHolder: a live master\'s worker (its parent) is said to be that master\'s; any other process by pid and command; unix sockets by path', () => {
  const live = findPortHolder(tcp('127.0.0.1', 8080), view({ 300: { fds: ['socket:[4025]'], env: workerEnv, ppid: 100, cmd: ['node', 'raw.js'] } }));
  assert.equal(describePortHolder(live!), '(held by pid 300, `node raw.js`, a worker of generation 3 of the running hitless master pid 100: stop that master, `kill -TERM 100`, or choose another address)');
  const other = findPortHolder(tcp('127.0.0.1', 8080), view({ 42: { fds: ['socket:[4025]'], ppid: 1, cmd: ['nginx: master process'] } }));
  assert.equal(describePortHolder(other!), '(another process listens there: pid 42, `nginx: master process`; stop it or choose another port)');
  const unix = findPortHolder({ kind: 'unix', path: '/srv/app/run/app.sock', name: 'a', source: 'unix:run/app.sock' } as ListenerSpec,
    view({ 7: { fds: ['socket:[5001]'], ppid: 1, cmd: ['python3', 'app.py'] } }));
  assert.deepEqual(unix, { pids: [7], command: 'python3 app.py' });
  // Nothing this user can see holds it: nothing to say.
  assert.equal(findPortHolder(tcp('127.0.0.1', 8080), view({})), undefined);
});
