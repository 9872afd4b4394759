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
