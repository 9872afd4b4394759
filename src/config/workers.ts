/**
 * The worker count rule, once: a whole number of workers, at least one. The `workers` key
 * of hitless.json has it in its schema (with "auto"); `hitless scale` checks it here at
 * every entry (the command line, the control request, the master's handle, the
 * supervisor), so they all accept and refuse the same values with the same message.
 */
import { HitlessError } from '../errors.js';

/** Fewest workers a generation runs. */
export const MIN_WORKERS = 1;

const isWorkerCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= MIN_WORKERS;

const notACount = (value: unknown, what: string): HitlessError =>
  new HitlessError('ERR_USAGE', `${what}: ${JSON.stringify(value) ?? 'nothing'} is not a worker count; give a positive integer such as 4`);

/**
 * `value` when it is a worker count; else ERR_USAGE, naming `what` and showing the value.
 *
 * @example
 * workerCount(4, 'scale'); // 4
 * workerCount(0, 'scale'); // throws ERR_USAGE: scale: 0 is not a worker count; give a positive integer such as 4
 */
export function workerCount(value: unknown, what: string): number {
  if (isWorkerCount(value)) return value;
  throw notACount(value, what);
}

/**
 * A worker count typed as text (`hitless scale 4`): digits only, then the same rule; the
 * message shows the text as typed.
 *
 * @example
 * parseWorkerCount('4', 'hitless scale'); // 4
 * parseWorkerCount('two', 'hitless scale'); // throws ERR_USAGE: hitless scale: "two" is not a worker count; …
 */
export function parseWorkerCount(text: string, what: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (isWorkerCount(n)) return n;
  throw notACount(text, what);
}
