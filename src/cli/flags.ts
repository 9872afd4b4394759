/**
 * Flag parsing for the CLI commands: node:util parseArgs with its errors turned into one
 * clear ERR_USAGE line (with a "did you mean" for typos), plus the flags every client
 * command shares to find the master (--config, --run-dir; resolved by config/locate.ts).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HitlessError } from '../errors.js';
import { closest } from '../config/closest.js';
import { durationLimit, parseDuration } from '../config/duration.js';
import { STRATEGY_NAMES } from '../config/defaults.js';
import type { StrategyName } from '../config/types.js';

export type FlagOptions = NonNullable<ParseArgsConfig['options']>;
export type ParsedFlags<T extends FlagOptions> = ReturnType<typeof parseArgs<{ options: T; allowPositionals: boolean; strict: true }>>;

/** Flags of the commands that talk to a running master. */
export const CLIENT_FLAGS = {
  config: { type: 'string' },
  'run-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagOptions;

/**
 * Parses `argv` for the command `name`; unknown flags, missing values and stray
 * arguments become ERR_USAGE errors naming the command's --help.
 *
 * @example
 * const { values } = parseFlags('status', argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
 */
export function parseFlags<T extends FlagOptions>(
  name: string, argv: string[], options: T, allowPositionals = false,
): ParsedFlags<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (!e.code?.startsWith('ERR_PARSE_ARGS')) throw err;
    const see = `see \`hitless ${name} --help\``;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'(-[^']*)'/.exec(e.message)?.[1] ?? e.message;
      // `hitless scale -1`: a negative number, not a misspelt flag.
      if (/^-\d/.test(flag)) throw new HitlessError('ERR_USAGE', `${flag}: a negative number is not accepted by \`hitless ${name}\` (${see})`);
      const known = Object.keys(options).map((k) => `--${k}`);
      const guess = closest(flag.replace(/=.*$/, ''), known);
      throw new HitlessError('ERR_USAGE', `unknown flag ${flag} for \`hitless ${name}\`${guess ? `; did you mean ${guess}?` : ''} (${see})`);
    }
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']*)'/.exec(e.message)?.[1] ?? '';
      // check takes start's worker command too.
      const hint = name === 'start' || name === 'check' ? `; put the worker command after --: \`hitless ${name} -- node server.js\`` : '';
      throw new HitlessError('ERR_USAGE', `unexpected argument "${arg}" for \`hitless ${name}\`${hint} (${see})`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // Node's words: "Option '--workers <value>' argument missing", "Option '--boot-nice'
      // argument is ambiguous." (the next argument starts with a dash).
      const flag = /'(--?[\w-]+)/.exec(e.message)?.[1] ?? 'the flag';
      if (/ambiguous/.test(e.message)) {
        const next = argv[argv.indexOf(flag) + 1] ?? '';
        // A negative count or duration (--timeout -5s, -n -1): no flag takes one, and the
        // equals-sign advice would only lead to a second refusal.
        if (/^-\d/.test(next)) throw new HitlessError('ERR_USAGE', `${flag} ${next}: a negative value is not accepted (${see})`);
        throw new HitlessError('ERR_USAGE', next === '--' || next === ''
          ? `${flag} needs a value before -- (${see})`
          : `${flag} ${next}: a value that starts with "-" goes after an equals sign: ${flag}=${next} (${see})`);
      }
      if (/missing/.test(e.message)) throw new HitlessError('ERR_USAGE', `${flag} needs a value (${see})`);
    }
    throw new HitlessError('ERR_USAGE', `${e.message.split('\n')[0]} (${see})`);
  }
}

/**
 * `--timeout <duration>` (or another duration `flag`) of the client commands, in ms
 * (undefined when not given). 0 is refused: `reload --timeout 0` started a reload and then
 * reported it failed at once (exit 1) while it went live; no limit is the flag left out.
 */
export function parseTimeoutFlag(value: string | undefined, flag = '--timeout'): number | undefined {
  if (value === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    throw new HitlessError('ERR_USAGE', `${flag}: ${(err as Error).message}`);
  }
  const problem = durationLimit(ms, true);
  const unlimited = ms === 0 && flag === '--timeout' ? ', or leave --timeout out to wait as long as it takes' : '';
  if (problem !== undefined) throw new HitlessError('ERR_USAGE', `${flag}: got ${JSON.stringify(value)}; ${problem}${unlimited}`);
  return ms;
}

/**
 * A one-off reload strategy from `--canary` / `--strategy <name>` (undefined: the
 * config's). Both given and disagreeing, or an unknown name, is ERR_USAGE.
 *
 * @example
 * const strategy = strategyFlag('reload', values.canary, values.strategy); // 'canary'
 */
export function strategyFlag(command: string, canary: boolean | undefined, strategy: string | undefined): StrategyName | undefined {
  if (strategy !== undefined && !(STRATEGY_NAMES as readonly string[]).includes(strategy)) {
    throw new HitlessError('ERR_USAGE', `--strategy: unknown strategy "${strategy}"; use ${STRATEGY_NAMES.join(', ')} (see \`hitless ${command} --help\`)`);
  }
  if (canary && strategy !== undefined && strategy !== 'canary') {
    throw new HitlessError('ERR_USAGE', `--canary and --strategy ${strategy} disagree; give one of them (see \`hitless ${command} --help\`)`);
  }
  return canary ? 'canary' : (strategy as StrategyName | undefined);
}
