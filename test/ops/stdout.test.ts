// Where a master's stdout goes (src/ops/stdout.ts), for `hitless logs`: a pipe is named by
// the process that reads it, which is not always the parent (`hitless start | tee`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { masterOutput } from '../../src/ops/stdout.js';
import { waitUntil } from '../helpers/master.js';

test('a process writing into a pipe that another one reads: the reader is named, not the parent shell', { skip: process.platform !== 'linux' }, async (t) => {
  // sh is the parent of both; sleep writes into the pipe, tail reads it.
  const sh = spawn('sh', ['-c', 'sleep 60 | tail -f /dev/null; :'], { stdio: 'ignore', detached: true });
  t.after(() => {
    try {
      process.kill(-sh.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  await once(sh, 'spawn');
  const children = (): number[] => readFileSync(`/proc/${sh.pid}/task/${sh.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const comm = (pid: number): string => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  // The shell forks both; nothing announces it (waitUntil, for a condition nobody announces).
  await waitUntil(() => children().map(comm).sort().join(',') === 'sleep,tail', 'sh started sleep and tail');
  const [sleep, tail] = ['sleep', 'tail'].map((name) => children().find((pid) => comm(pid) === name)!);
  assert.deepEqual(masterOutput(sleep!), { kind: 'pipe', parent: `tail (pid ${tail})` });
});
