#!/usr/bin/env node
/**
 * The `hitless` command. Dispatches `hitless <command> …` to src/cli/commands/<command>.ts
 * (loaded lazily, so `hitless status` does not load the master runtime), and is the only
 * place that prints errors and sets the exit code: one line `hitless: <message>`, exit 2
 * for usage and configuration mistakes, 1 for everything else, a stack trace only with
 * HITLESS_DEBUG=1.
 */
import { readFileSync } from 'node:fs';
import { configProblems, HitlessError, isHitlessError } from '../errors.js';
import { exitCodeOf } from './exit-codes.js';
import { guardOutput } from './pipe.js';
import type { Command } from './command.js';
import { closest } from '../config/closest.js';
import { COMMANDS, isCommand } from './catalog.js';
import { fdLimitError, openFilesLimit } from '../ops/fd-limit.js';

/** Set when the command asked the process to end at once (CommandResult.exitAtOnce). */
let exitAtOnce = false;

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return `hitless ${version()}: restart and upgrade network servers without dropping a request

Usage: hitless <command> [flags]

Commands:
${Object.entries(COMMANDS).map(([name, summary]) => `  ${name.padEnd(width)}${summary}`).join('\n')}

Run \`hitless <command> --help\` for a command's flags.
Docs: docs/CLI.md (commands), docs/CONFIG.md (hitless.json), docs/ERRORS.md (error codes).`;
}

async function loadCommand(name: string): Promise<Command> {
  try {
    return ((await import(`./commands/${name}.js`)) as { command: Command }).command;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(`commands/${name}.js`)) {
      throw new HitlessError('ERR_USAGE', `command "${name}" is not available in this build of hitless`);
    }
    throw err;
  }
}

/**
 * Commands of other process managers (PM2, supervisorctl, systemctl) that people type out of
 * habit, and the hitless command that does what they want; no spelling is close enough.
 */
const OTHER_TOOLS: Readonly<Record<string, string>> = {
  restart: 'reload', gracefulReload: 'reload', 'graceful-reload': 'reload', kill: 'stop', delete: 'stop',
  ls: 'list', ps: 'list', monit: 'status --watch', log: 'logs', update: 'upgrade',
};

/**
 * Runs the CLI with `argv` (without node and the script) and resolves with the exit code.
 * Writes only to stdout/stderr; never exits the process itself.
 *
 * @example
 * process.exitCode = await main(['status', '--json']);
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  // Read now: once the descriptors have run out, /proc/self/limits cannot be opened to say the limit.
  const fdLimit = openFilesLimit();
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = name === 'help' ? rest[0] : undefined;
      if (topic !== undefined && isCommand(topic)) {
        process.stdout.write((await loadCommand(topic)).usage + '\n');
        return 0;
      }
      process.stdout.write(help() + '\n');
      return name === undefined ? 2 : 0;
    }
    if (name === '--version' || name === '-v') {
      process.stdout.write(version() + '\n');
      return 0;
    }
    if (!isCommand(name)) {
      const guess = Object.hasOwn(OTHER_TOOLS, name) ? OTHER_TOOLS[name] : closest(name, Object.keys(COMMANDS));
      throw new HitlessError('ERR_USAGE', `unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ''} (see \`hitless --help\`)`);
    }
    // A client command whose reader goes away (`| head`) drops its output, not its outcome.
    if (name !== 'start') guardOutput();
    const result = await (await loadCommand(name)).run(rest);
    if (typeof result === 'number') return result;
    exitAtOnce = result.exitAtOnce;
    return result.code;
  } catch (thrown) {
    if (process.env.HITLESS_DEBUG === '1') process.stderr.write(`${(thrown as Error)?.stack ?? String(thrown)}\n`);
    // Out of file descriptors, wherever it happened (loading a module, opening a file): the
    // limit and how to raise it, not the system's bare EMFILE (h21 F7).
    const err = fdLimitError(thrown, fdLimit) ?? thrown;
    if (isHitlessError(err)) {
      // Run from a subfolder of the app: say which master runs above (the folder is what finds it).
      if (err.code === 'ERR_NO_MASTER' && !rest.some((a) => a === '--run-dir' || a.startsWith('--run-dir='))) {
        const above = await (await import('../control/find.js')).masterAbove(process.cwd()).catch(() => undefined);
        if (above !== undefined) err.message = `${err.message}; ${above}`;
      }
      // The release commands name their codes, as their own outcome lines do (RELEASES.md's table).
      const code = err.code.startsWith('ERR_RELEASE_') && !err.message.endsWith(`(${err.code})`) ? ` (${err.code})` : '';
      process.stderr.write(`hitless: ${err.message}${code}\n`);
      // A configuration with several problems: the message names the first, and each of the
      // others gets a line, so that one run shows everything to fix.
      const problems = err.details.problems;
      if (Array.isArray(problems)) for (const problem of problems.slice(1)) process.stderr.write(`  ${String(problem)}\n`);
      // A script that asked for JSON gets the error as JSON too (no master, a timeout, a bad
      // flag), where the command had no outcome to print.
      // An invalid configuration always has `problems`, even with one (docs/CLI.md).
      const listed = configProblems(err) ?? (Array.isArray(problems) ? problems : undefined);
      if (rest.includes('--json')) writeJsonError(err.code, err.message, listed);
      return exitCodeOf(err.code);
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`hitless: ${message} (unexpected; run with HITLESS_DEBUG=1 for details)\n`);
    // A script that asked for JSON learns of it on stdout too, as of any error.
    if (rest.includes('--json')) writeJsonError('ERR_UNEXPECTED', message);
    return exitCodeOf('ERR_UNEXPECTED');
  }
}

/** A command's error on stdout for a script that asked for --json (docs/CLI.md): `{"ok":false,"error":{…}}`. */
function writeJsonError(code: string, message: string, problems?: unknown[]): void {
  process.stdout.write(JSON.stringify({ ok: false, error: { code, message, ...(problems ? { problems } : {}) } }) + '\n');
}

const code = await main(process.argv.slice(2));
// A master that handed over to a new one ends here, skipping Node's teardown: closing its
// handles would unlink the unix socket files the new master serves (src/master/master.ts).
if (exitAtOnce) process.exit(code);
process.exitCode = code;
