/**
 * Durations in the config and on the command line: a number is milliseconds, a string
 * is a number with an optional unit (`ms`, `s`, `m`, `h`). Inside the master every
 * duration is milliseconds.
 */

/** Accepted duration strings: `"500"`, `"500ms"`, `"2s"`, `"1.5m"`, `"1h"`. */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** What to write instead of a bad duration; config errors append it. */
export const DURATION_HINT = 'use milliseconds (5000) or a string with a unit: "500ms", "2s", "1.5m", "1h"';

/**
 * The longest duration a setting may have: Node's timers hold at most 2^31 − 1 ms (about
 * 24.8 days); a longer one fires after 1 ms (TimeoutOverflowWarning), so a drainTimeout of
 * "1000h" meant to never cut a drain would SIGKILL at once.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * What is wrong with a duration that has the right form (undefined: nothing): longer than
 * {@link MAX_DURATION_MS}, or 0 where `positive` (a readyTimeout of 0 fails every start, a
 * fetch interval of 0 polls without pause).
 *
 * @example
 * durationLimit('1000h'); // 'at most 596 h (2147483647 ms, the longest timer Node has) …'
 */
export function durationLimit(value: number | string, positive = false): string | undefined {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    return undefined; // the form is checked elsewhere
  }
  if (ms > MAX_DURATION_MS) return `at most "596h" (${MAX_DURATION_MS} ms, the longest timer Node has); a longer one would fire at once`;
  if (positive && ms === 0) return 'must be more than 0; give a duration such as "30s"';
  return undefined;
}

/** Thrown by {@link parseDuration}; `message` says what is wrong and how to write it. */
export class DurationError extends Error {
  override name = 'DurationError';
}

/**
 * Converts a duration to whole milliseconds (rounded).
 *
 * @throws DurationError for negatives, non-finite numbers and strings without a known unit.
 * @example
 * parseDuration(250);     // 250
 * parseDuration('2s');    // 2000
 * parseDuration('1.5m');  // 90000
 * parseDuration('2 days') // throws: "2 days" is not a duration; use milliseconds …
 */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new DurationError(`${String(value)} is not a duration; ${DURATION_HINT}`);
    }
    return Math.round(value);
  }
  if (typeof value === 'string') {
    const m = DURATION_PATTERN.exec(value.trim());
    if (m) return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1));
    throw new DurationError(`${JSON.stringify(value)} is not a duration; ${DURATION_HINT}`);
  }
  throw new DurationError(`${JSON.stringify(value) ?? String(value)} is not a duration; ${DURATION_HINT}`);
}

/**
 * Formats milliseconds for people: `850 ms`, `1.2 s`, `3 min 5 s`, `2 h 4 min`.
 *
 * @example
 * formatDuration(1234); // "1.2 s"
 */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1).replace(/\.0$/, '')} s`;
  if (ms < 3_600_000) {
    const s = Math.floor((ms % 60_000) / 1_000);
    return `${Math.floor(ms / 60_000)} min${s ? ` ${s} s` : ''}`;
  }
  const min = Math.floor((ms % 3_600_000) / 60_000);
  return `${Math.floor(ms / 3_600_000)} h${min ? ` ${min} min` : ''}`;
}
