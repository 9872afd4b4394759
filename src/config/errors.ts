/**
 * Turns a failed validation into one message a person can act on: where the bad value
 * came from (a key in the config file or a flag), the value itself, and what to write
 * instead (execa's "please rename it to 'SIGTERM'" is the model).
 */
import type { z } from 'zod';
import { HitlessError } from '../errors.js';
import { EXPECTED, OBJECT_SCHEMAS } from './schema.js';
import { closest } from './closest.js';

export { closest };

/** Where the top-level keys came from: a flag name, or absent for the config file. */
export interface ValueSources {
  /** Display name of the config file (as given), when one was read. */
  file: string | undefined;
  /** Top-level key -> flag that set it (`readyTimeout` -> `--ready-timeout`). */
  flags: Record<string, string>;
}

/** `restart.backoffMax`, `listen[1].mode`, `env.PORT`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function pathPattern(path: readonly PropertyKey[]): string {
  const head = path.slice(0, 2).map(String);
  if (path.length >= 2 && (head[0] === 'env' || (head[0] === 'fetch' && head[1] === 'headers'))) {
    return head[0] === 'env' ? 'env.*' : 'fetch.headers.*';
  }
  return path.map((seg) => (typeof seg === 'number' ? '[]' : String(seg))).join('.').replace(/\.\[\]/g, '[]');
}

/** Shows a value as it would be written in JSON, shortened. */
export function showValue(value: unknown): string {
  // JSON.stringify writes a number beyond a double's range (1e400 in the file) as null.
  if (typeof value === 'number' && !Number.isFinite(value)) return `${value < 0 ? 'minus ' : ''}a number too large to read (${value})`;
  const text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** "the key restart.backoffMax in hitless.json" or "--ready-timeout". */
export function describeKey(path: readonly PropertyKey[], sources: ValueSources): string {
  const flag = sources.flags[String(path[0])];
  const key = formatPath(path);
  if (flag && path.length <= 2) return flag;
  return sources.file ? `"${key}" in ${sources.file}` : `"${key}"`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const seg of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[seg] : undefined;
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown, sources: ValueSources): string {
  if (issue.code === 'invalid_union') {
    // A `listen` entry in object form with a misspelt key ("adress"): the object branch's
    // unknown key, with "did you mean", not the union's "a string or an object {…}".
    const unknown = issue.errors.flat().find((inner) => inner.code === 'unrecognized_keys');
    if (unknown !== undefined) return describeIssue({ ...unknown, path: [...issue.path, ...unknown.path] }, input, sources);
  }
  if (issue.code === 'unrecognized_keys') {
    const where = pathPattern(issue.path);
    const known = Object.keys(OBJECT_SCHEMAS[where]?.shape ?? {}).filter((k) => k !== '$schema');
    return issue.keys.map((key) => {
      const full = formatPath([...issue.path, key]);
      const guess = closest(key, known);
      const fix = guess ? `did you mean "${formatPath([...issue.path, guess])}"?` : `known keys: ${known.join(', ')}`;
      return `unknown key "${full}"${sources.file ? ` in ${sources.file}` : ''}; ${fix}`;
    }).join('; ');
  }
  if (issue.code === 'invalid_key') {
    // A bad key of a record (env, fetch.headers): the name is the problem, not its value.
    const name = String(issue.path.at(-1) ?? '');
    const where = describeKey(issue.path.slice(0, -1), sources);
    return `${where}: ${JSON.stringify(name)} is not a valid name${name === '' ? ' (it is empty)' : name.includes('=') ? ' (it contains "=")' : ''}; write {"NAME": "value"}`;
  }
  const value = valueAt(input, issue.path);
  const expected = issue.code === 'custom' ? issue.message : (EXPECTED[pathPattern(issue.path)] ?? issue.message);
  // A header value is a credential (a token): the message names the key, never prints it.
  const shown = pathPattern(issue.path) === 'fetch.headers.*' && typeof value === 'string' ? '(value hidden)' : showValue(value);
  return `${describeKey(issue.path, sources)}: got ${shown}; ${expected}`;
}

/**
 * One HitlessError (ERR_CONFIG_INVALID) for a failed parse: the first problem in the
 * message, all of them in `details.problems`.
 */
export function configErrorFromZod(error: z.ZodError, input: unknown, sources: ValueSources, also: readonly string[] = []): HitlessError {
  return configErrorOf([...error.issues.map((issue) => describeIssue(issue, input, sources)), ...also]);
}

/**
 * One HitlessError (ERR_CONFIG_INVALID) for a list of problems: the first in the message,
 * which ends `(and N more problems)`, all of them in `details.problems`.
 *
 * @example
 * configErrorOf(['--workers: got 0; …', '--listen: got "x"; …']).message; // '--workers: got 0; … (and 1 more problem)'
 */
export function configErrorOf(problems: readonly string[]): HitlessError {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  return new HitlessError('ERR_CONFIG_INVALID', `${problems[0]}${more}`, { details: { problems: [...problems] } });
}

/** An ERR_CONFIG_INVALID for a problem found after the schema check (listeners, paths…). */
export function configError(path: readonly PropertyKey[], value: unknown, problem: string, sources: ValueSources): HitlessError {
  return new HitlessError('ERR_CONFIG_INVALID', `${describeKey(path, sources)}: got ${showValue(value)}; ${problem}`, {
    details: { key: formatPath(path), value },
  });
}
