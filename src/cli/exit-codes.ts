/**
 * The CLI's exit codes for errors: 2 for a mistake in what the user typed or wrote, 1 for
 * everything else (what went wrong at run time).
 */
import type { HitlessErrorCode } from '../errors.js';

/** Mistakes in what the user typed or wrote: exit code 2. */
export const USAGE_CODES: ReadonlySet<HitlessErrorCode> = new Set([
  'ERR_USAGE', 'ERR_CONFIG_NOT_FOUND', 'ERR_CONFIG_PARSE', 'ERR_CONFIG_INVALID',
]);

/**
 * The exit code for an error of `code`.
 *
 * @example
 * exitCodeOf('ERR_USAGE'); // 2
 * exitCodeOf('ERR_DEPLOY_BUSY'); // 1
 */
export function exitCodeOf(code: HitlessErrorCode): number {
  return USAGE_CODES.has(code) ? 2 : 1;
}
