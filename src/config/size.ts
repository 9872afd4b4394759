/**
 * Byte sizes in the config: a number is bytes, a string is a number with a unit
 * (`k`, `M`, `G`, optionally `i`/`B`: `"10M"`, `"512MiB"`, `"1.5G"`). Units are powers
 * of 1024, like log rotators and `ls -h` use.
 */

/** Accepted size strings. */
export const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*(?:([kKmMgG])i?[bB]?|[bB])?$/;

/** What to write instead of a bad size; config errors append it. */
export const SIZE_HINT = 'use bytes (1048576) or a string with a unit: "500k", "10M", "1G"';

const UNIT: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Converts a size to whole bytes, or returns undefined when it is not one.
 *
 * @example
 * parseSize('10M');  // 10485760
 * parseSize(4096);   // 4096
 * parseSize('lots'); // undefined
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = SIZE_PATTERN.exec(value.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * (m[2] ? (UNIT[m[2].toLowerCase()] ?? 1) : 1));
}
