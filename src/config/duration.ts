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
