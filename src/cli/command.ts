/**
 * One CLI subcommand. `src/cli/main.ts` dispatches `hitless <name> …` to the module
 * `src/cli/commands/<name>.ts`, which exports `command` of this type; its one-line summary
 * lives in src/cli/catalog.ts, which `hitless --help` reads without loading any module.
 * `run` returns the process exit code; it throws HitlessError for failures the CLI
 * entry prints as one line (`hitless: <message>`), never a stack trace.
 */
export interface Command {
  name: string;
  /** Full usage text for `hitless <name> --help`. */
  usage: string;
  /** The exit code; or one with `exitAtOnce`: the process must end at once (process.exit), without Node's teardown. */
  run(argv: string[]): Promise<number | CommandResult>;
}

/** A command's end that needs the process to exit at once: a master that handed over to a new one (src/master/master.ts, MasterResult). */
export interface CommandResult {
  code: number;
  exitAtOnce: boolean;
}
