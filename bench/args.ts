/**
 * The flags of the standalone bench scripts (canary.ts, websockets.ts, handover-cpu.ts).
 *
 * @example
 * flagValue(['--reloads', '5'], '--reloads', '3'); // '5'
 * flagValue([], '--reloads', '3'); // '3'
 */
export function flagValue(argv: string[], name: string, fallback: string): string {
  return argv.includes(name) ? (argv[argv.indexOf(name) + 1] ?? fallback) : fallback;
}

/**
 * What is wrong with a `--label` value (a diagnostic run's name in its results file), or
 * another name given as `what` (passes.ts's arm names), or undefined when nothing is.
 *
 * @example
 * labelProblem('burst16'); // undefined
 * labelProblem('Burst 16'); // '--label takes lowercase letters, digits and dashes, not "Burst 16"'
 */
export function labelProblem(value: string, what = '--label'): string | undefined {
  return /^[a-z0-9][a-z0-9-]*$/.test(value) ? undefined : `${what} takes lowercase letters, digits and dashes, not ${JSON.stringify(value)}`;
}
