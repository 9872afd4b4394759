/**
 * Timeouts written as a small bare number (`"readyTimeout": 5`, `--ready-timeout 5`): a
 * number without a unit is milliseconds (CONFIG.md, "Durations"), so that is valid and
 * almost surely meant as seconds. `hitless check` lists it among its warnings and `hitless
 * start` logs it, neither refuses it: a start with it fails only later ("did not announce
 * readiness within 5 ms"), or a drain is cut at once. Read from the file and flags as
 * written, since the loaded configuration no longer tells `5` from `"5ms"`.
 */
import type { ConfigFlags } from './load.js';

/** Timeouts no one sets below a second on purpose: a bare number there was meant as seconds. */
const TIMEOUTS: Array<{ key: string; flag?: keyof ConfigFlags; read: (file: Record<string, unknown>) => unknown }> = [
  { key: 'readyTimeout', flag: 'readyTimeout', read: (f) => f.readyTimeout },
  { key: 'drainTimeout', flag: 'drainTimeout', read: (f) => f.drainTimeout },
  { key: 'stayReady', flag: 'stayReady', read: (f) => f.stayReady },
  { key: 'canary.duration', read: (f) => (f.canary as Record<string, unknown> | undefined)?.duration },
  { key: 'restart.window', read: (f) => (f.restart as Record<string, unknown> | undefined)?.window },
];

/** Under this, a bare number is taken for seconds written without the unit. */
export const BARE_DURATION_WARN_BELOW_MS = 1000;

/**
 * One warning per timeout given as a bare number under a second (a flag over the file's
 * value, as start takes it), naming the key, what it means and the fix.
 *
 * @example
 * bareDurationWarnings({ readyTimeout: 5 }, {});
 * // ['readyTimeout: 5 is 5 ms (a number without a unit is milliseconds); write "5s" if you meant seconds']
 */
export function bareDurationWarnings(file: Record<string, unknown>, flags: ConfigFlags): string[] {
  const warnings: string[] = [];
  for (const { key, flag, read } of TIMEOUTS) {
    const given = flag !== undefined && flags[flag] !== undefined ? flags[flag] : read(file);
    const ms = typeof given === 'number' ? given : typeof given === 'string' && /^\d+$/.test(given.trim()) ? Number(given) : undefined;
    if (ms !== undefined && ms > 0 && ms < BARE_DURATION_WARN_BELOW_MS) {
      warnings.push(`${key}: ${String(given)} is ${ms} ms (a number without a unit is milliseconds); write "${ms}s" if you meant seconds`);
    }
  }
  return warnings;
}
