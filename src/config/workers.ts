/**
 * The worker count rule, once: a whole number of workers, at least one. The `workers` key
 * of hitless.json has it in its schema (with "auto"); `hitless scale` checks it here at
 * every entry (the command line, the control request, the master's handle, the
 * supervisor), so they all accept and refuse the same values with the same message.
 */
import { HitlessError } from '../errors.js';

/** Fewest workers a generation runs. */
export const MIN_WORKERS = 1;
/**
 * Most workers a generation runs: far above what a machine serves well (a Node worker is
 * ~40 MB), a bound for a typo such as `hitless scale 10000000`, which started workers
 * until the master itself ran out of memory and the app went down.
 */
export const MAX_WORKERS = 1024;

const isWorkerCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= MIN_WORKERS && v <= MAX_WORKERS;

const notACount = (value: unknown, what: string): HitlessError =>
  new HitlessError('ERR_USAGE', typeof value === 'number' && Number.isSafeInteger(value) && value > MAX_WORKERS
    ? `${what}: ${value} workers is more than hitless runs (at most ${MAX_WORKERS}); give a count this machine can run, such as one per CPU`
    : `${what}: ${JSON.stringify(value) ?? 'nothing'} is not a worker count; give a positive integer such as 4`);

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
  throw notACount(Number.isSafeInteger(n) && n > MAX_WORKERS ? n : text, what);
}
