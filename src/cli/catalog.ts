/**
 * Every `hitless` command and its one-line summary, in help order: the one place these
 * lines are written (`hitless --help` prints them; docs/CLI.md's table says the same, and
 * test/cli/catalog.test.ts checks that every command here has a module and a row there).
 * Kept apart from the command modules so that `hitless --help` loads none of them.
 */
export const COMMANDS = {
  start: 'run the master (binds sockets, starts workers); in the foreground, or --detach to return the shell',
  reload: 'apply the edited configuration with a new generation; exit 0 once it is live',
  check: 'validate hitless.json, a deploy-only file or start flags without touching the master; exit 2 if invalid',
  scale: 'change the number of workers of the serving generation without a reload',
  status: 'show the master, its workers, their traffic and the last reload',
  list: 'show every master on this machine: app folder, pid, generation, workers, last reload',
  stop: 'stop the master gracefully (drain workers, then exit)',
  upgrade: 'replace the master by the hitless installed now, keeping every socket and connection',
  logs: 'show worker output (log files, or a detached master\'s output file); -f follows, -n N lines',
  startup: 'write a systemd unit that runs this app\'s master at boot (--install installs and starts it)',
  release: 'install a folder or .tgz as a new release and switch to it',
  rollback: 'switch back to the previous release',
  releases: 'list the installed releases',
  deploy: 'roll a release across the hosts in hitless.json, canary first; roll back on failure',
} as const;

export type CommandName = keyof typeof COMMANDS;

/** Is `name` a `hitless` command? */
export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}
