// The master's stop signals (src/master/signals.ts): the first drains, a second kills the
// workers at once, and a repeat within SAME_STOP_MS (Ctrl-C on `npm start` where the shell
// execs the master: the terminal's SIGINT and npm's forwarded one) is the same stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/core/logger.js';
import type { MasterHandle } from '../../src/core/types.js';
import { handleSignals } from '../../src/master/signals.js';
import { SAME_STOP_MS } from '../../src/lib/defaults.js';

function setup() {
  let clock = 1000;
  const stops: boolean[] = [];
  const lines: string[] = [];
  const master = { stop: async (force?: boolean) => void stops.push(force === true) } as unknown as MasterHandle;
  const logger = createLogger({ format: 'json', write: (l) => lines.push(String((JSON.parse(l) as { msg: unknown }).msg)) });
  const remove = handleSignals(master, logger, () => clock);
  return { stops, lines, remove, advance: (ms: number) => void (clock += ms) };
}

test('a stop signal drains; one more within SAME_STOP_MS is the same stop; one after that kills the workers at once', (t) => {
  const { stops, lines, remove, advance } = setup();
  t.after(remove);
  process.emit('SIGINT', 'SIGINT');
  advance(8);
  process.emit('SIGINT', 'SIGINT');
  assert.deepEqual(stops, [false], 'the repeat 8 ms later asks for nothing more');
  assert.deepEqual(lines, [
    'SIGINT received: draining all workers (send it again to stop at once)',
    'SIGINT received again 8 ms after the first: the same stop (send it again to stop at once)',
  ]);
  advance(SAME_STOP_MS);
  process.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(stops, [false, true]);
  assert.equal(lines.at(-1), 'SIGTERM received again: killing workers now');
});

test('a second stop signal SAME_STOP_MS after the first kills the workers at once', (t) => {
  const { stops, remove, advance } = setup();
  t.after(remove);
  process.emit('SIGTERM', 'SIGTERM');
  advance(SAME_STOP_MS);
  process.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(stops, [false, true]);
});
